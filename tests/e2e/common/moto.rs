//! A moto server: the AWS API on loopback, driven by the real AWS SDK and by boto3.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{free_port, wait_for};

/// Why a test cannot run without moto.
const NEEDS_MOTO: &str =
    "this test needs moto: python3 -m pip install 'moto[server]' (see .ci/requirements.txt)";

/// A running moto server; terminated on drop.
pub(crate) struct Moto {
    child: Child,
    /// Its base URL on 127.0.0.1.
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto on a free loopback port. Without moto it fails in CI (which installs it,
    /// `CI` set) and elsewhere returns None after printing why the test is SKIPPED.
    pub(crate) fn start() -> Option<Moto> {
        if !Self::installed() {
            assert!(std::env::var_os("CI").is_none(), "{NEEDS_MOTO}");
            println!("SKIPPED: {NEEDS_MOTO}");
            return None;
        }
        Some(Self::spawn())
    }

    /// Whether python3 can import moto's server and boto3.
    fn installed() -> bool {
        Command::new("python3")
            .args(["-c", "import moto.server, boto3"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn spawn() -> Moto {
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let up = wait_for(Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        assert!(up.is_some(), "moto did not start on port {port}");
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Creates the auto scaling group `web` (MinSize 1) with a launch configuration.
    pub(crate) fn create_web_group(&self, max_size: u32, desired: u32) {
        self.boto(&format!(
            "c.create_launch_configuration(LaunchConfigurationName='lc', ImageId='ami-12c6146b', InstanceType='t3.micro')\n\
             c.create_auto_scaling_group(AutoScalingGroupName='web', LaunchConfigurationName='lc', MinSize=1, \
             MaxSize={max_size}, DesiredCapacity={desired}, AvailabilityZones=['us-east-1a'])\nprint('{{}}')"
        ));
    }

    /// The `[groups.NAME.actuator]` keys of an `aws` actuator driving group `web` on this moto.
    pub(crate) fn web_actuator(&self) -> String {
        format!(
            "kind = \"aws\"\nauto_scaling_group = \"web\"\nregion = \"us-east-1\"\nendpoint = \"{}\"",
            self.endpoint
        )
    }

    /// The Python expression `expr` over `g`, group `web` as moto describes it, as JSON.
    pub(crate) fn web_group(&self, expr: &str) -> Value {
        self.boto(&format!(
            "g = c.describe_auto_scaling_groups(AutoScalingGroupNames=['web'])['AutoScalingGroups'][0]\n\
             print(json.dumps({expr}))"
        ))
    }

    /// Group `web`'s DesiredCapacity.
    pub(crate) fn web_desired(&self) -> u64 {
        self.web_group("g['DesiredCapacity']")
            .as_u64()
            .expect("DesiredCapacity of web")
    }

    /// Group `web`'s MaxSize.
    pub(crate) fn web_max(&self) -> u64 {
        self.web_group("g['MaxSize']")
            .as_u64()
            .expect("MaxSize of web")
    }

    /// Runs boto3 against moto; `code` uses `c` (an autoscaling client) and prints JSON.
    pub(crate) fn boto(&self, code: &str) -> Value {
        let script = format!(
            "import boto3, json\nc = boto3.client('autoscaling', endpoint_url='{}', region_name='us-east-1', \
             aws_access_key_id='testing', aws_secret_access_key='testing')\n{code}",
            self.endpoint
        );
        let out = Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "boto3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Environment for a process that talks to this moto through the real AWS SDK, with
    /// instance-metadata lookups off so nothing leaves the machine.
    pub(crate) fn env(&self) -> [(&'static str, &'static str); 6] {
        [
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_CONFIG_FILE", "/nonexistent"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ]
    }
}
