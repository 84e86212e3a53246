//! Cgroup limits on real containers (cgroup v1 here): an OOM kill reported as such, a
//! pids limit stopping a fork loop, the cpu quota in the cgroup files, live stats,
//! freezing, and nothing left behind.

use super::{Case, assert_no_cgroup_left, can_run_with, run_case, scratch, start};
use agent::engine::runtime::cgroup::Resources;

const MIB: u64 = 1 << 20;

#[test]
fn runtime_memory_limit_oom_kills_and_the_exit_says_so() {
    if !can_run_with(true) {
        return;
    }
    let dir = scratch("oom");
    let case = Case {
        name: "oom",
        args: &[
            "sh",
            "-c",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived ${#x}",
        ],
        resources: Some(Resources {
            memory: Some(64 * MIB),
            ..Resources::default()
        }),
        ..Case::default()
    };
    let o = run_case(&dir.0, &case).unwrap();
    let stats = o.stats.unwrap();
    eprintln!("oom: {:?} {stats:?}", o.exit);
    assert!(!o.out.contains("survived"), "{}", o.out);
    assert_eq!(o.exit.code, 137, "SIGKILL: {}", o.out);
    assert!(o.exit.oom_killed, "{stats:?}");
    assert!(
        stats.oom_kills >= 1 && stats.memory_limit_hits > 0,
        "{stats:?}"
    );
    assert_no_cgroup_left(case.name);
}

#[test]
fn runtime_pids_limit_stops_a_fork_loop() {
    if !can_run_with(true) {
        return;
    }
    let dir = scratch("pids");
    let case = Case {
        name: "pids",
        args: &[
            "sh",
            "-c",
            "for i in $(seq 100); do sleep 30 & echo started $i; done; echo loop-done",
        ],
        resources: Some(Resources {
            pids_limit: Some(20),
            ..Resources::default()
        }),
        ..Case::default()
    };
    let o = run_case(&dir.0, &case).unwrap();
    let stats = o.stats.unwrap();
    eprintln!("pids: {:?} {stats:?}", o.exit);
    // sh and 19 sleeps make 20: the 20th sleep cannot fork, and ash gives up.
    assert!(o.out.contains("started 19\nsh: can't fork"), "{}", o.out);
    assert!(!o.out.contains("started 20") && !o.out.contains("loop-done"));
    assert_ne!(o.exit.code, 0);
    assert!(stats.pids_limit_hits >= 1, "{stats:?}");
    assert!(!o.exit.oom_killed);
    assert_no_cgroup_left(case.name);
}

#[test]
fn runtime_cpu_quota_stats_and_freeze_on_a_running_container() {
    if !can_run_with(true) {
        return;
    }
    let dir = scratch("cpu");
    let case = Case {
        name: "cpu",
        args: &[
            "sh",
            "-c",
            "cat /proc/self/cgroup; cat >/dev/null; echo done",
        ],
        resources: Some(Resources {
            cpus: Some(1.5),
            cpu_shares: Some(512),
            memory: Some(64 * MIB),
            pids_limit: Some(50),
            ..Resources::default()
        }),
        stdin_pipe: true,
        ..Case::default()
    };
    let running = start(&dir.0, &case).unwrap();
    {
        let g = running.cgroup.as_ref().unwrap();
        assert_eq!(g.file("cpu", "cpu.cfs_quota_us"), "150000");
        assert_eq!(g.file("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(g.file("cpu", "cpu.shares"), "512");
        assert_eq!(g.file("memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(g.file("pids", "pids.max"), "50");
        let procs = g.file("pids", "cgroup.procs");
        assert!(
            procs.lines().any(|p| p == running.pid.to_string()),
            "{procs}"
        );
        let stats = g.cgroups.stats(&g.id).unwrap();
        assert!(
            stats.pids_current >= 1 && stats.memory_usage > 0,
            "{stats:?}"
        );
        g.cgroups.freeze(&g.id, true).unwrap();
        assert_eq!(g.file("freezer", "freezer.state"), "FROZEN");
        g.cgroups.freeze(&g.id, false).unwrap();
        assert_eq!(g.file("freezer", "freezer.state"), "THAWED");
    }
    let o = running.finish().unwrap();
    assert_eq!(o.exit.code, 0, "{}", o.out);
    assert!(o.out.ends_with("done\n"), "{}", o.out);
    // The cgroup namespace is rooted at the container's cgroup.
    for c in ["memory", "pids", "cpu", "freezer"] {
        assert!(o.out.contains(&format!(":{c}:/\n")), "{c}: {}", o.out);
    }
    assert!(o.stats.unwrap().cpu_usage_ns > 0);
    assert_no_cgroup_left(case.name);
}
