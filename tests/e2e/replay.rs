//! End-to-end tests of `headroom backtest` and `headroom simulate` on the built binary, with
//! real CSV files in a temporary directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn headroom(args: &[&str]) -> Output {
    Command::new(crate::common::bin())
        .args(args)
        .output()
        .expect("run headroom")
}

fn write_trace(dir: &Path, name: &str, rows: usize, iso: bool) -> PathBuf {
    let mut s = String::from("timestamp,value\n");
    for i in 0..rows {
        let t = 1_700_000_000 + i as i64 * 60;
        let v = 50.0
            + 30.0 * ((i as f64) * 2.0 * std::f64::consts::PI / 1440.0).sin()
            + ((i * 7919) % 13) as f64;
        if iso {
            let dt = chrono::DateTime::from_timestamp(t, 0).expect("time");
            s.push_str(&format!("{},{v}\n", dt.format("%Y-%m-%dT%H:%M:%S")));
        } else {
            s.push_str(&format!("{t},{v}\n"));
        }
    }
    let p = dir.join(name);
    std::fs::write(&p, s).expect("write trace");
    p
}

fn read_csv(p: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(p)
        .expect("read output")
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn backtest_writes_the_stable_format_and_is_causal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write_trace(dir.path(), "t.csv", 3000, false);
    let out = dir.path().join("f.csv");
    let plot = dir.path().join("f.svg");
    let start = (1_700_000_000 + 2000 * 60).to_string();
    let o = headroom(&[
        "backtest",
        "--input",
        input.to_str().unwrap(),
        "--horizon",
        "5",
        "--start",
        &start,
        "--every",
        "100",
        "--output",
        out.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = read_csv(&out);
    assert_eq!(rows[0], ["origin", "target", "horizon", "p50", "p90"]);
    assert_eq!(rows.len(), 1 + 10 * 5);
    assert_eq!(rows[1][0], start);
    assert_eq!(rows[1][1], (1_700_000_000 + 2001 * 60).to_string());
    for r in &rows[1..] {
        let (p50, p90): (f64, f64) = (r[3].parse().unwrap(), r[4].parse().unwrap());
        assert!(p50.is_finite() && p90 >= p50);
    }
    assert!(std::fs::read_to_string(&plot).unwrap().starts_with("<svg"));

    // Changing the data after an origin leaves the forecasts at or before it unchanged.
    let changed = dir.path().join("c.csv");
    let text = std::fs::read_to_string(&input).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for l in lines.iter_mut().skip(1 + 2501) {
        let (t, v) = l.split_once(',').unwrap();
        *l = format!("{t},{}", v.parse::<f64>().unwrap() * 5.0 + 1000.0);
    }
    std::fs::write(&changed, lines.join("\n")).unwrap();
    let out2 = dir.path().join("f2.csv");
    let o = headroom(&[
        "backtest",
        "--input",
        changed.to_str().unwrap(),
        "--horizon",
        "5",
        "--start",
        &start,
        "--every",
        "100",
        "--output",
        out2.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let rows2 = read_csv(&out2);
    let cut = (1_700_000_000 + 2500 * 60)
        .to_string()
        .parse::<i64>()
        .unwrap();
    for (a, b) in rows.iter().zip(&rows2).skip(1) {
        if a[0].parse::<i64>().unwrap() <= cut {
            assert_eq!(a, b);
        }
    }
    assert_ne!(rows.last(), rows2.last());
}

#[test]
fn backtest_reads_iso_timestamps_as_utc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write_trace(dir.path(), "iso.csv", 200, true);
    let out = dir.path().join("f.csv");
    let o = headroom(&[
        "backtest",
        "--input",
        input.to_str().unwrap(),
        "--horizon",
        "2",
        "--start",
        "2023-11-14T23:53:20Z",
        "--every",
        "50",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = read_csv(&out);
    // 2023-11-14T23:53:20Z = 1700006000 = row 100.
    assert_eq!(rows[1][0], "1700006000");
    assert_eq!(rows.len(), 1 + 2 * 2);
}

#[test]
fn simulate_writes_a_plan_and_a_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write_trace(dir.path(), "d.csv", 2000, false);
    let out = dir.path().join("plan.csv");
    let plot = dir.path().join("plan.svg");
    for policy in ["predictive", "reactive"] {
        let o = headroom(&[
            "simulate",
            "--input",
            input.to_str().unwrap(),
            "--capacity-per-instance",
            "10",
            "--target-utilization",
            "0.7",
            "--warmup",
            "300",
            "--min",
            "2",
            "--max",
            "50",
            "--policy",
            policy,
            "--output",
            out.to_str().unwrap(),
            "--plot",
            plot.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(stdout.contains("instance-hours"), "{stdout}");
        assert!(stdout.contains("under-provisioned") && stdout.contains("scaling actions"));
        let rows = read_csv(&out);
        assert_eq!(rows[0], ["timestamp", "desired"]);
        assert_eq!(rows.len(), 2001);
        assert_eq!(rows[1][0], "1700000000");
        let counts: Vec<u32> = rows[1..].iter().map(|r| r[1].parse().unwrap()).collect();
        assert!(counts.iter().all(|&c| (2..=50).contains(&c)));
        assert!(
            counts.iter().max() > counts.iter().min(),
            "{policy}: the plan follows demand"
        );
        assert!(
            std::fs::read_to_string(&plot)
                .unwrap()
                .contains("planned capacity")
        );
    }
}

/// Runs headroom with `stdin` as its standard input.
fn headroom_fed(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(crate::common::bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run headroom");
    let mut pipe = child.stdin.take().expect("stdin");
    // Fed from a thread: the child may fill its stdout before it has read all of this.
    let text = stdin.to_vec();
    let feeder = std::thread::spawn(move || pipe.write_all(&text));
    let o = child.wait_with_output().expect("wait headroom");
    // A child that exits before reading it all closes the pipe: its status and stderr, which
    // the caller asserts on, say why, not the feeder's broken pipe.
    let _ = feeder.join();
    o
}

#[test]
fn a_replay_composes_in_a_pipeline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write_trace(dir.path(), "d.csv", 2000, false);
    let out = dir.path().join("plan.csv");
    let policy = [
        "--capacity-per-instance",
        "10",
        "--target-utilization",
        "0.7",
    ];
    let file_run = headroom(
        &[
            &["simulate", "--input", input.to_str().unwrap()][..],
            &policy,
            &["--warmup", "300", "--stabilization", "120", "--output"],
            &[out.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(
        file_run.status.success(),
        "{}",
        String::from_utf8_lossy(&file_run.stderr)
    );

    // `-` in and out, and the warm-up and stabilisation written as the config file writes them.
    let trace = std::fs::read(&input).expect("read trace");
    let piped = headroom_fed(
        &[
            &["simulate", "--input", "-"][..],
            &policy,
            &["--warmup", "5m", "--stabilization", "2m", "--output", "-"],
        ]
        .concat(),
        &trace,
    );
    assert!(
        piped.status.success(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    let csv = String::from_utf8_lossy(&piped.stdout);
    assert_eq!(
        csv,
        std::fs::read_to_string(&out).expect("plan"),
        "stdout is the CSV alone"
    );
    let said = String::from_utf8_lossy(&piped.stderr);
    assert_eq!(
        said,
        String::from_utf8_lossy(&file_run.stdout),
        "the summary moves to stderr"
    );

    // A reader that stops early only stops the CSV, quietly, as it stops any filter: the plot
    // is still drawn. The same when the summary is what goes to the closed pipe.
    let plot = dir.path().join("b.svg");
    let o = crate::common::to_a_closed_reader(
        Command::new(crate::common::bin())
            .args([
                "backtest",
                "--input",
                input.to_str().unwrap(),
                "--horizon",
                "30",
            ])
            .args(["--output", "-", "--plot", plot.to_str().unwrap()]),
    );
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{said}");
    assert!(said.contains("its reader stopped early"), "{said}");
    assert!(std::fs::read_to_string(&plot).is_ok_and(|s| s.starts_with("<svg")));
    let plot = dir.path().join("s.svg");
    let o = crate::common::to_a_closed_reader(
        Command::new(crate::common::bin())
            .args(["simulate", "--input", input.to_str().unwrap()])
            .args(policy)
            .args(["--warmup", "5m", "--output", out.to_str().unwrap()])
            .args(["--plot", plot.to_str().unwrap()]),
    );
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(std::fs::read_to_string(&plot).is_ok_and(|s| s.starts_with("<svg")));

    // A bad trace on standard input is named as such, with its line and reason (64).
    for (text, want) in [
        (
            &b"time;value\n1,2\n"[..],
            "standard input: line 1: header is",
        ),
        (b"", "standard input: empty"),
    ] {
        let o = headroom_fed(
            &[
                &["simulate", "--input", "-"][..],
                &policy,
                &["--warmup", "5m", "--output", "-"],
            ]
            .concat(),
            text,
        );
        let said = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(64), "{said}");
        assert!(said.contains(want), "{said}");
        assert!(o.stdout.is_empty(), "nothing written for a bad trace");
    }

    // An SVG cannot share standard output.
    let o = headroom(
        &[
            &["simulate", "--input", input.to_str().unwrap()][..],
            &policy,
            &["--warmup", "5m", "--output", "-", "--plot", "-"],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--plot: give a file"));
}

#[test]
fn bad_input_is_reported_with_file_line_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("o.csv");
    let cases: [(&str, &str); 6] = [
        (
            "timestamp,value\n1,2\n2,oops\n",
            "line 3: value \"oops\" is not a number",
        ),
        (
            "timestamp,value\n1,2\nlater,3\n",
            "line 3: timestamp \"later\"",
        ),
        (
            "timestamp,value\n5,2\n4,3\n",
            "line 3: timestamp 4 is not after",
        ),
        ("time,v\n1,2\n", "line 1: header"),
        ("", "empty file"),
        ("timestamp,value\n1,2,3\n", "line 2: expected 2 fields"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let p = dir.path().join(format!("bad{i}.csv"));
        std::fs::write(&p, text).unwrap();
        for cmd in ["backtest", "simulate"] {
            let mut args = vec![
                cmd,
                "--input",
                p.to_str().unwrap(),
                "--output",
                out.to_str().unwrap(),
            ];
            if cmd == "backtest" {
                args.extend(["--horizon", "3"]);
            } else {
                args.extend([
                    "--capacity-per-instance",
                    "1",
                    "--target-utilization",
                    "0.5",
                    "--warmup",
                    "60",
                ]);
            }
            let o = headroom(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success(), "{cmd} {i}");
            assert!(
                err.contains(&format!("bad{i}.csv")) && err.contains(want),
                "{cmd} {i}: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    let o = headroom(&[
        "backtest",
        "--input",
        "/nonexistent/x.csv",
        "--horizon",
        "3",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/x.csv"));
    let good = write_trace(dir.path(), "g.csv", 10, false);
    let o = headroom(&[
        "simulate",
        "--input",
        good.to_str().unwrap(),
        "--capacity-per-instance",
        "0",
        "--target-utilization",
        "0.5",
        "--warmup",
        "60",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--capacity-per-instance"));
    // The policy's flags: each refused with its name and reason (exit 64), by the rule the
    // configuration files use.
    for (flag, value, want) in [
        (
            "--target-utilization",
            "1.5",
            "--target-utilization: 1.5 is outside (0, 1]",
        ),
        (
            "--shortfall-budget",
            "0.6",
            "--shortfall-budget: 0.6 is outside (0, 0.5)",
        ),
        (
            "--spend-ceiling",
            "0.5",
            "--spend-ceiling: 0.5 is neither 0 (derived from the shortfall budget) nor at least 1",
        ),
    ] {
        let mut args = vec![
            "simulate",
            "--input",
            good.to_str().unwrap(),
            "--capacity-per-instance",
            "1",
            "--target-utilization",
            "0.5",
            "--warmup",
            "60",
            "--output",
            out.to_str().unwrap(),
        ];
        if flag == "--target-utilization" {
            args[6] = value;
        } else {
            args.extend([flag, value]);
        }
        let o = headroom(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(64), "{flag}: {err}");
        assert!(err.contains(want), "{flag}: {err}");
    }
}

/// `--history` reaches the forecaster: a shorter window forgets rows a longer one still
/// forecasts from (past the 1,000 rows always kept), and a bare number is refused.
#[test]
fn the_history_window_is_a_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write_trace(dir.path(), "t.csv", 2500, false);
    let start = (1_700_000_000 + 2400 * 60).to_string();
    let run = |history: &str| {
        let out = dir.path().join(format!("f-{history}.csv"));
        let o = headroom(&[
            "backtest",
            "--input",
            input.to_str().unwrap(),
            "--horizon",
            "5",
            "--start",
            &start,
            "--history",
            history,
            "--output",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        read_csv(&out)
    };
    let (short, long) = (run("1h"), run("14d"));
    assert_eq!(short.len(), long.len());
    assert_ne!(short, long, "the window changed nothing");
    let o = headroom(&[
        "backtest",
        "--input",
        input.to_str().unwrap(),
        "--horizon",
        "5",
        "--history",
        "5",
        "--output",
        dir.path().join("x.csv").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("--history") && err.contains("like 10s"),
        "{err}"
    );
}

/// `headroom simulate --input INPUT --config POLICY --output OUT` and `extra` flags.
fn simulate_with_config(input: &Path, policy: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "simulate",
        "--input",
        input.to_str().unwrap(),
        "--config",
        policy.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    headroom(&args)
}

/// `simulate --config`: a policy file with one unnamed `[[schedule]]` entry on a flat trace.
/// The plan rises exactly `lead` seconds before the entry, holds through it, falls after it,
/// and the summary names the entry with the decisions it raised; a flag wins over the file.
#[test]
fn a_scheduled_entry_raises_the_plan_lead_seconds_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A day of flat demand at one-minute steps from 2026-01-02T00:00:00Z.
    let t0: i64 = 1_767_312_000;
    let mut csv = String::from("timestamp,value\n");
    for i in 0..1440 {
        csv.push_str(&format!("{},10\n", t0 + i * 60));
    }
    let input = dir.path().join("flat.csv");
    std::fs::write(&input, csv).unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[policy]\ncapacity_per_instance = 5.0\nmax = 20\n\n[[schedule]]\nat = \"2026-01-02T12:00:00Z\"\nduration = \"1h\"\n\
         min_instances = 12\n",
    )
    .unwrap();
    let out = dir.path().join("plan.csv");
    let run = |extra: &[&str]| {
        let o = simulate_with_config(&input, &policy, &out, extra);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let plan: Vec<(i64, u32)> = read_csv(&out)[1..]
            .iter()
            .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
            .collect();
        (String::from_utf8_lossy(&o.stdout).to_string(), plan)
    };
    let (stdout, plan) = run(&[]);
    let start = t0 + 12 * 3600;
    // Warm-up and target utilisation left out default as a group's: 5 minutes and 70%.
    let lead = 300 + 60; // warm-up + the trace's step
    assert!(stdout.contains("warm-up 300 s, lead 360 s"), "{stdout}");
    assert!(stdout.contains("target tracking at 70%"), "{stdout}");
    let at = |t: i64| plan.iter().find(|(pt, _)| *pt == t).expect("a decision").1;
    assert!(at(start - lead - 60) < 12, "{:?}", at(start - lead - 60));
    for t in (start - lead..start + 3600).step_by(60) {
        assert_eq!(at(t), 12, "raised at {t}");
    }
    // After the end, once the stabilisation window (5 min) passed, the plan falls back.
    assert!(at(start + 3600 + 900) < 12);
    // 6 decisions before the start and 60 during it.
    assert!(
        stdout.contains("schedule[0] (at 2026-01-02T12:00:00Z, 1h): raised 66 decisions"),
        "{stdout}"
    );
    // A flag wins over the file: a longer warm-up raises the plan earlier.
    let (_, plan) = run(&["--warmup", "600"]);
    let at = |t: i64| plan.iter().find(|(pt, _)| *pt == t).expect("a decision").1;
    assert_eq!(at(start - 660), 12);
    assert!(at(start - 720) < 12);
}

/// A broken policy file: every problem, keyed by entry and field, exit 64.
#[test]
fn a_broken_policy_file_names_every_entry_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write_trace(dir.path(), "t.csv", 10, false);
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[policy]\ncapacity_per_instance = 5.0\nwarmup = \"5m\"\n\n[[schedule]]\n\
         name = \"sale\"\ncron = \"0 8 * *\"\nduration = \"1h\"\nmin_instances = 12\n\n\
         [[schedule]]\nat = \"christmas\"\nduration = \"1h\"\ndemand_factor = 0.5\n",
    )
    .unwrap();
    let o = simulate_with_config(&input, &policy, &dir.path().join("plan.csv"), &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(64), "{err}");
    for want in [
        "policy.toml (3 problems)",
        "schedule[0].cron: (sale) \"0 8 * *\" has 4 fields",
        "schedule[1].at: \"christmas\" is not a time",
        "schedule[1].demand_factor: 0.5 is outside [1, 100]",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
}

/// A lead the forecaster cannot reach is refused rather than planned at a horizon short of it:
/// a 0.1 s trace makes a 5-minute lead 3000 steps; `backtest` past 1024 steps likewise. Before,
/// both ran, the plan at about 102 s ahead and the backtest cut to 1024 horizons unsaid.
#[test]
fn a_lead_or_horizon_past_the_forecasters_reach_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut csv = String::from("timestamp,value\n");
    for i in 0..3000 {
        csv.push_str(&format!(
            "{:.1},{}\n",
            1_700_000_000.0 + f64::from(i) * 0.1,
            100 + i
        ));
    }
    let input = dir.path().join("fine.csv");
    std::fs::write(&input, csv).unwrap();
    let out = dir.path().join("out.csv");
    let (i, o) = (input.to_str().unwrap(), out.to_str().unwrap());
    let run = headroom(&[
        "simulate",
        "--input",
        i,
        "--capacity-per-instance",
        "10",
        "--output",
        o,
    ]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(64), "{err}");
    assert!(err.contains("forecaster looks 1024 ahead"), "{err}");
    assert!(!out.exists(), "nothing written");
    // Target tracking alone needs no forecast: it replays.
    let run = headroom(&[
        "simulate",
        "--input",
        i,
        "--capacity-per-instance",
        "10",
        "--policy",
        "reactive",
        "--output",
        o,
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let run = headroom(&["backtest", "--input", i, "--horizon", "2000", "--output", o]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(64), "{err}");
    assert!(err.contains("--horizon must be 1 to 1024"), "{err}");
}
