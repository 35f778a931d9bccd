//! Actuators that apply a group's desired capacity: aws, keda, command, dry-run.
