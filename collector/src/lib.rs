//! Host signals for headroom.
//!
//! CONTRACT (skeleton): the public types below are what the agent consumes. They may grow fields,
//! but their names and the meaning of existing fields are stable.

pub mod sample;
pub mod sampler;

pub use sample::{
    AcceptQueue, AppGauge, CpuStats, DiskStats, MemoryStats, MetricName, NetStats, PressureStats,
    Sample, SourceKind, SourceState,
};
pub use sampler::{SampleReceiver, Sampler, SamplerConfig, SamplerHandle};
