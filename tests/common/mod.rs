//! Pieces shared by the end-to-end tests: the built binary as agent or coordinator, token files,
//! a moto server for the AWS API, and polling.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The freshly built binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_headroom");

/// Unix seconds now.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Polls `f` every 100 ms until it returns Some or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes a token file readable by its owner only.
pub fn write_token(dir: &Path, name: &str, token: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// An HTTP client that returns error statuses instead of failing.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// GETs `url` + `path` with an optional bearer token; returns status and body.
pub fn get(url: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = http().get(format!("{url}{path}"));
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.call().unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

/// A running `headroom coordinator`; killed on drop.
pub struct Coordinator {
    pub child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Coordinator {
    /// Starts `headroom coordinator --config CONFIG` and waits for its listen line.
    pub fn start(dir: &Path, config: &Path, env: &[(&str, &str)]) -> Coordinator {
        let log = dir.join(format!("coordinator-{}.log", now()));
        let mut cmd = Command::new(BIN);
        cmd.arg("coordinator")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting the coordinator");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("headroom coordinator listening on ") {
                        return Coordinator {
                            child,
                            url: url.to_string(),
                            log,
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "coordinator did not start: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `headroom agent` in its own temporary directory; killed on drop.
pub struct Agent {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
}

impl Agent {
    /// A new agent directory with a fast cadence; `extra` is appended to the config.
    pub fn new(extra: &str) -> Agent {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = format!(
            "[agent]\ninterval = \"200ms\"\ndecision_interval = \"1s\"\nstate_directory = \"{}\"\nsocket = \"{}\"\n{extra}",
            dir.path().join("state").display(),
            dir.path().join("run/headroom.sock").display(),
        );
        std::fs::write(dir.path().join("headroom.toml"), cfg).expect("write config");
        Agent { dir, child: None }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("headroom.toml")
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/headroom.sock")
    }
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("state/headroom.db")
    }
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Starts the agent and waits until its control socket answers.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .expect("log file");
        let child = Command::new(BIN)
            .args(["agent", "--config"])
            .arg(self.config_path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn agent");
        self.child = Some(child);
        let ready = wait_for(Duration::from_secs(30), || {
            (self.socket().exists() && self.cli(&["status", "--json"]).status.success())
                .then_some(())
        });
        assert!(
            ready.is_some(),
            "agent did not become ready; log:\n{}",
            self.log()
        );
    }

    /// Runs a CLI command against this agent.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(args)
            .arg("--socket")
            .arg(self.socket())
            .output()
            .expect("run cli")
    }

    /// Runs a CLI command with `--json` and parses its output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.cli(&a);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("valid json")
    }

    /// Sends a signal with kill(1) and waits for the process.
    pub fn signal(&mut self, sig: &str) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let ok = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
        child.wait().expect("wait")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A local application's Prometheus endpoint serving one gauge whose value the test sets.
pub struct AppGauge {
    pub url: String,
    value: Arc<AtomicU64>,
}

impl AppGauge {
    /// Serves `# TYPE NAME gauge` / `NAME VALUE` on a free loopback port until the test ends.
    pub fn serve(name: &str, initial: f64) -> AppGauge {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        let value = Arc::new(AtomicU64::new(initial.to_bits()));
        let (v, name) = (value.clone(), name.to_string());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf);
                let body = format!(
                    "# TYPE {name} gauge\n{name} {}\n",
                    f64::from_bits(v.load(Ordering::Relaxed))
                );
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        AppGauge { url, value }
    }

    /// Sets the gauge.
    pub fn set(&self, v: f64) {
        self.value.store(v.to_bits(), Ordering::Relaxed);
    }
}

/// A moto server (the AWS API on loopback); terminated on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts `python3 -m moto.server` on a free loopback port. Without moto it fails in CI
    /// (which installs it) and elsewhere returns None after saying why the test is skipped.
    pub fn start() -> Option<Moto> {
        let probe = Command::new("python3")
            .args(["-c", "import moto.server, boto3"])
            .output();
        if !probe.is_ok_and(|o| o.status.success()) {
            let why = "this test needs moto: python3 -m pip install 'moto[server]' (see .ci/requirements.txt)";
            assert!(std::env::var_os("CI").is_none(), "{why}");
            println!("SKIPPED: {why}");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
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
        Some(Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }

    /// Runs boto3 against moto; `code` uses `c` (an autoscaling client) and prints JSON.
    pub fn boto(&self, code: &str) -> Value {
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
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_CONFIG_FILE", "/nonexistent".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".into()),
        ]
    }
}
