//! `POST /containers/{id}/update` (`docker update`): new resource limits
//! and restart policy. They go into the container's record (inspect shows
//! them, a restarted berthd keeps them, the next start builds its spec from
//! them) and, for a running or paused container, into its cgroup through
//! berth-runtime's `update`, the same writer that set them at create. Only
//! the limits the request sets are written, as dockerd hands runc only
//! those; a failed write puts the old record back.

use berth_runtime::state::Root;
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder,
};

use super::{Container, ContainerError, ContainerStore, Status, lock};
use crate::api::containers_types::HostConfig;
use crate::api::containers_types::validate::{
    adapt_resources_to_host, validate_resources, validate_restart_policy,
};
use crate::engine::Engine;

/// moby's `--cpus` period: 100 ms.
const NANO_CPUS_PERIOD: i64 = 100_000;

/// Moby's `Container.UpdateContainer`: the current HostConfig with the
/// request's non-zero resources and its restart policy (if named) laid
/// over it, or the conflict Docker refuses with (409).
pub(crate) fn merge(current: &HostConfig, request: &HostConfig) -> Result<HostConfig, String> {
    let conflict = |what: &str, set: &str| {
        Err(format!(
            "Conflicting options: {what} cannot be updated as {set} has already been set"
        ))
    };
    if request.nano_cpus > 0 && current.cpu_period > 0 {
        return conflict("Nano CPUs", "CPU Period");
    }
    if request.nano_cpus > 0 && current.cpu_quota > 0 {
        return conflict("Nano CPUs", "CPU Quota");
    }
    if request.cpu_period > 0 && current.nano_cpus > 0 {
        return conflict("CPU Period", "NanoCPUs");
    }
    if request.cpu_quota > 0 && current.nano_cpus > 0 {
        return conflict("CPU Quota", "NanoCPUs");
    }
    let mut merged = current.clone();
    let take = |target: &mut i64, value: i64| {
        if value != 0 {
            *target = value;
        }
    };
    if request.blkio_weight != 0 {
        merged.blkio_weight = request.blkio_weight;
    }
    // Clamped to the kernel's range, as at create (and as written live).
    take(&mut merged.cpu_shares, request.cpu_shares.clamp(0, 262_144));
    if request.cpu_shares > 0 {
        merged.cpu_shares = merged.cpu_shares.max(2);
    }
    take(&mut merged.nano_cpus, request.nano_cpus);
    take(&mut merged.cpu_period, request.cpu_period);
    take(&mut merged.cpu_quota, request.cpu_quota);
    if !request.cpuset_cpus.is_empty() {
        merged.cpuset_cpus = request.cpuset_cpus.clone();
    }
    if !request.cpuset_mems.is_empty() {
        merged.cpuset_mems = request.cpuset_mems.clone();
    }
    if request.memory != 0 {
        if request.memory > current.memory_swap && request.memory_swap == 0 {
            return Err("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".to_owned());
        }
        merged.memory = request.memory;
    }
    take(&mut merged.memory_swap, request.memory_swap);
    take(&mut merged.memory_reservation, request.memory_reservation);
    take(&mut merged.cpu_realtime_period, request.cpu_realtime_period);
    take(
        &mut merged.cpu_realtime_runtime,
        request.cpu_realtime_runtime,
    );
    if request.pids_limit.is_some() {
        merged.pids_limit = request.pids_limit;
    }
    if !request.restart_policy.name.is_empty() {
        if current.auto_remove && !request.restart_policy.is_none() {
            return Err(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .to_owned(),
            );
        }
        merged.restart_policy = request.restart_policy.clone();
    }
    Ok(merged)
}

/// What a running container's cgroup gets: only the limits the request
/// sets (dockerd's `toContainerdResources`). `--cpus` becomes a 100 ms
/// period and its quota; a pids limit of 0 means none.
pub(crate) fn live_resources(request: &HostConfig) -> Result<LinuxResources, ContainerError> {
    let spec_err = |e: oci_spec::OciSpecError| ContainerError::InvalidConfig(e.to_string());
    let mut resources = LinuxResourcesBuilder::default().build().map_err(spec_err)?;
    let mut memory = LinuxMemoryBuilder::default();
    let mut has_memory = false;
    if request.memory != 0 {
        memory = memory.limit(request.memory);
        has_memory = true;
    }
    if request.memory_reservation != 0 {
        memory = memory.reservation(request.memory_reservation);
        has_memory = true;
    }
    if request.memory_swap > 0 || request.memory_swap == -1 {
        memory = memory.swap(request.memory_swap);
        has_memory = true;
    }
    if has_memory {
        resources.set_memory(Some(memory.build().map_err(spec_err)?));
    }
    let mut cpu = LinuxCpuBuilder::default();
    let mut has_cpu = false;
    if request.cpu_shares > 0 {
        cpu = cpu.shares(request.cpu_shares.clamp(2, 262_144) as u64);
        has_cpu = true;
    }
    let (period, quota) = if request.nano_cpus > 0 {
        (
            NANO_CPUS_PERIOD,
            request.nano_cpus * NANO_CPUS_PERIOD / 1_000_000_000,
        )
    } else {
        (request.cpu_period, request.cpu_quota)
    };
    if period != 0 {
        cpu = cpu.period(period as u64);
        has_cpu = true;
    }
    if quota != 0 {
        cpu = cpu.quota(quota);
        has_cpu = true;
    }
    if request.cpu_realtime_period > 0 {
        cpu = cpu.realtime_period(request.cpu_realtime_period as u64);
        has_cpu = true;
    }
    if request.cpu_realtime_runtime != 0 {
        cpu = cpu.realtime_runtime(request.cpu_realtime_runtime);
        has_cpu = true;
    }
    if !request.cpuset_cpus.is_empty() {
        cpu = cpu.cpus(request.cpuset_cpus.clone());
        has_cpu = true;
    }
    if !request.cpuset_mems.is_empty() {
        cpu = cpu.mems(request.cpuset_mems.clone());
        has_cpu = true;
    }
    if has_cpu {
        resources.set_cpu(Some(cpu.build().map_err(spec_err)?));
    }
    if let Some(limit) = request.pids_limit {
        let limit = if limit > 0 { limit } else { -1 };
        resources.set_pids(Some(
            LinuxPidsBuilder::default()
                .limit(limit)
                .build()
                .map_err(spec_err)?,
        ));
    }
    if request.blkio_weight > 0 {
        resources.set_block_io(Some(
            LinuxBlockIoBuilder::default()
                .weight(request.blkio_weight)
                .build()
                .map_err(spec_err)?,
        ));
    }
    // oci-spec's defaults add an empty device list; an update never
    // touches the device rules.
    resources.set_devices(None);
    Ok(resources)
}

impl ContainerStore {
    /// Records the merged HostConfig and writes the request's limits into a
    /// live container's cgroup, under the container's `op` lock so a start
    /// builds its spec from either the old or the new record, never half.
    fn update_config(
        &self,
        container: &Container,
        request: &HostConfig,
        ncpu: usize,
    ) -> Result<(), ContainerError> {
        let _op = lock(&container.op);
        let cannot = |reason: String| ContainerError::CannotUpdate {
            id: container.id.clone(),
            reason,
        };
        let record = container.record();
        if matches!(record.state.status, Status::Removing | Status::Dead) {
            return Err(cannot(
                "container is marked for removal and cannot be \"update\"".to_owned(),
            ));
        }
        let merged = merge(&record.host_config, request).map_err(cannot)?;
        // What Docker leaves to the kernel's refusal (a 500 there): the
        // merged limits must still make sense together.
        validate_resources(&merged, ncpu, true).map_err(ContainerError::InvalidConfig)?;
        let live = live_resources(request)?;
        // A prelaunched container was made with the old limits.
        self.drop_prelaunch(container);
        let old = record.host_config;
        let updated = self.update(container, |r| r.host_config = merged)?;
        if matches!(record.state.status, Status::Running | Status::Paused) {
            let root = Root::new(self.runtime_root.clone());
            if let Err(source) = berth_runtime::container::update(&root, &container.id, &live) {
                // It exited meanwhile: the next start applies the record.
                if container.is_running() {
                    if let Err(err) = self.update(container, |r| r.host_config = old) {
                        crate::log::error!(
                            "restoring the config of container {}: {err}",
                            container.id
                        );
                    }
                    return Err(ContainerError::UpdateFailed {
                        id: container.id.clone(),
                        source,
                    });
                }
            }
        }
        self.publish("update", &updated, &[]);
        Ok(())
    }
}

impl Engine {
    /// `POST /containers/{id}/update`: moby's checks (400), then the merge
    /// (409 on a conflict), the record and the live cgroup. Returns the
    /// warnings (limits this host cannot enforce are discarded).
    pub(crate) async fn container_update(
        &self,
        reference: &str,
        mut request: HostConfig,
    ) -> Result<Vec<String>, ContainerError> {
        let warnings = adapt_resources_to_host(&mut request, self.host())
            .map_err(ContainerError::InvalidConfig)?;
        validate_resources(&request, self.host().ncpu, true)
            .map_err(ContainerError::InvalidConfig)?;
        validate_restart_policy(&request.restart_policy).map_err(ContainerError::InvalidConfig)?;
        // As dockerd: the values are checked before the container is looked up.
        let container = self.containers.get(reference)?;
        let ncpu = self.host().ncpu;
        self.containers_blocking("update", move |store| {
            store.update_config(&container, &request, ncpu)
        })
        .await?;
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(json: &str) -> HostConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn merge_takes_only_what_the_request_sets() {
        let current = host(
            r#"{"Memory": 33554432, "MemorySwap": 67108864, "CpuShares": 512,
                "RestartPolicy": {"Name": "no"}}"#,
        );
        let request = host(r#"{"Memory": 67108864, "PidsLimit": 50}"#);
        let merged = merge(&current, &request).unwrap();
        assert_eq!(merged.memory, 64 << 20);
        assert_eq!(merged.memory_swap, 64 << 20);
        assert_eq!(merged.cpu_shares, 512);
        assert_eq!(merged.pids_limit, Some(50));
        assert_eq!(merged.restart_policy.name, "no");
    }

    #[test]
    fn merge_refuses_what_docker_refuses() {
        let unlimited = host("{}");
        assert_eq!(
            merge(&unlimited, &host(r#"{"Memory": 67108864}"#)).unwrap_err(),
            "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"
        );
        let with_cpus = host(r#"{"NanoCpus": 500000000}"#);
        assert_eq!(
            merge(&with_cpus, &host(r#"{"CpuPeriod": 50000}"#)).unwrap_err(),
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"
        );
        let auto_remove = host(r#"{"AutoRemove": true}"#);
        assert!(
            merge(
                &auto_remove,
                &host(r#"{"RestartPolicy": {"Name": "always"}}"#)
            )
            .unwrap_err()
            .contains("AutoRemove")
        );
    }

    #[test]
    fn live_resources_carry_only_the_request() {
        let r = live_resources(&host(r#"{"NanoCpus": 500000000, "PidsLimit": 0}"#)).unwrap();
        let cpu = r.cpu().as_ref().unwrap();
        assert_eq!((cpu.period(), cpu.quota()), (Some(100_000), Some(50_000)));
        assert_eq!(cpu.shares(), None);
        assert_eq!(r.pids().as_ref().unwrap().limit(), -1);
        assert!(r.memory().is_none() && r.devices().is_none() && r.block_io().is_none());
    }
}
