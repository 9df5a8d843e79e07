//! `GET /containers/{id}/stats`: one sample of the container's cgroup
//! statistics (read through berth-runtime) in Docker's `StatsResponse`
//! shape, minus `precpu_stats` and `preread`, which the API layer fills
//! from the previous sample.

use std::time::SystemTime;

use berth_runtime::cgroups::ContainerCgroup;
use berth_runtime::state::Root;
use serde_json::{Value, json};

use super::ContainerError;
use crate::api::containers_types::rfc3339_nano;
use crate::engine::Engine;

/// The host's CPU time in nanoseconds (`/proc/stat`, all CPUs), Docker's
/// `system_cpu_usage`.
fn system_cpu_nanos() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks * (1_000_000_000 / 100) // USER_HZ
}

impl Engine {
    /// One sample; all zero for a container that does not run.
    pub(crate) async fn container_stats_sample(
        &self,
        reference: &str,
    ) -> Result<(Value, bool), ContainerError> {
        let container = self.containers.get(reference)?;
        let record = container.record();
        let running = record.state.status.is_running();
        let read = rfc3339_nano(Some(SystemTime::now()));
        let mut sample = json!({
            "read": if running { read } else { rfc3339_nano(None) },
            "name": record.name,
            "id": record.id,
            "num_procs": 0,
            "pids_stats": {},
            "cpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                          "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
            "memory_stats": {},
            "blkio_stats": {"io_service_bytes_recursive": null, "io_serviced_recursive": null},
            "storage_stats": {},
        });
        if !running {
            return Ok((sample, false));
        }
        let root = Root::new(self.containers.runtime_root.clone());
        let id = record.id.clone();
        let (ncpu, mem_total) = (self.host().ncpu, self.host().mem_total);
        let stats = tokio::task::spawn_blocking(move || {
            let state = root.load(&id).map_err(|source| ContainerError::Runtime {
                id: id.clone(),
                source,
            })?;
            let cgroup = ContainerCgroup::open(&state.cgroup_path)
                .and_then(|cg| cg.stats())
                .map_err(|e| ContainerError::Runtime {
                    id: id.clone(),
                    source: e.into(),
                })?;
            Ok::<_, ContainerError>(cgroup)
        })
        .await
        .map_err(|_| ContainerError::Task("stats"))??;
        let cpu = &stats.cpu;
        sample["cpu_stats"] = json!({
            "cpu_usage": {
                "total_usage": cpu.usage.usage_total,
                "percpu_usage": cpu.usage.per_core_usage_total,
                "usage_in_kernelmode": cpu.usage.usage_kernel,
                "usage_in_usermode": cpu.usage.usage_user,
            },
            "system_cpu_usage": system_cpu_nanos(),
            "online_cpus": ncpu,
            "throttling_data": {
                "periods": cpu.throttling.periods,
                "throttled_periods": cpu.throttling.throttled_periods,
                "throttled_time": cpu.throttling.throttled_time,
            },
        });
        let memory = &stats.memory;
        // cgroup v1 reports "no limit" as a huge number: Docker shows the
        // host's memory instead.
        let limit = if memory.memory.limit == 0 || memory.memory.limit >= mem_total {
            mem_total
        } else {
            memory.memory.limit
        };
        sample["memory_stats"] = json!({
            "usage": memory.memory.usage,
            "max_usage": memory.memory.max_usage,
            "failcnt": memory.memory.fail_count,
            "limit": limit,
            "stats": memory.stats,
        });
        sample["pids_stats"] = json!({
            "current": stats.pids.current,
            "limit": stats.pids.limit,
        });
        let io_bytes: Vec<Value> = stats
            .blkio
            .service_bytes
            .iter()
            .map(|s| {
                json!({
                    "major": s.major,
                    "minor": s.minor,
                    "op": s.op_type.clone().unwrap_or_default(),
                    "value": s.value,
                })
            })
            .collect();
        sample["blkio_stats"]["io_service_bytes_recursive"] = json!(io_bytes);
        Ok((sample, true))
    }
}
