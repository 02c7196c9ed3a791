//! The memory this process may use, for `lpm_memory_limit_bytes`: the "RSS near limit" alert
//! and panel divide `process_resident_memory_bytes` by it.
//!
//! In a container the limit is the cgroup's (`memory.max` for cgroup v2,
//! `memory.limit_in_bytes` for v1); the kernel kills the process there, not at the host's RAM.
//! Without a cgroup limit ("max", or v1's page-rounded `i64::MAX` sentinel) it is the host's
//! `MemTotal`. Read once at start: limits are not changed under a running container in
//! practice, and reading cgroup files on every scrape would be wasted work.

/// Where the limit came from (the `source` label of `lpm_memory_limit_bytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitSource {
    /// cgroup v2 `memory.max`.
    CgroupV2,
    /// cgroup v1 `memory.limit_in_bytes`.
    CgroupV1,
    /// The host's physical memory (`/proc/meminfo` `MemTotal`).
    Host,
}

impl LimitSource {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitSource::CgroupV2 => "cgroup_v2",
            LimitSource::CgroupV1 => "cgroup_v1",
            LimitSource::Host => "host",
        }
    }
}

/// cgroup v1 reports "no limit" as a huge value (`i64::MAX` rounded down to a page); anything at
/// or above 2^60 bytes is no limit.
const V1_UNLIMITED: u64 = 1 << 60;

/// The limit from the contents of the cgroup v2 and v1 files and of `/proc/meminfo` (each
/// `None` when unreadable), or `None` when none of them gives a number.
pub fn limit_from(
    cgroup_v2: Option<&str>,
    cgroup_v1: Option<&str>,
    meminfo: Option<&str>,
) -> Option<(u64, LimitSource)> {
    let parse = |s: &str| s.trim().parse::<u64>().ok();
    if let Some(v) = cgroup_v2.and_then(parse) {
        return Some((v, LimitSource::CgroupV2));
    }
    if let Some(v) = cgroup_v1.and_then(parse).filter(|v| *v < V1_UNLIMITED) {
        return Some((v, LimitSource::CgroupV1));
    }
    let kib = meminfo?
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()?;
    Some((kib.saturating_mul(1024), LimitSource::Host))
}

/// Reads this process's limit from `/sys/fs/cgroup` and `/proc/meminfo`.
pub fn detect() -> Option<(u64, LimitSource)> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    limit_from(
        read("/sys/fs/cgroup/memory.max").as_deref(),
        read("/sys/fs/cgroup/memory/memory.limit_in_bytes").as_deref(),
        read("/proc/meminfo").as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:        8029184 kB\nMemFree:  1 kB\n";

    #[test]
    fn cgroup_v2_limit_wins() {
        assert_eq!(
            limit_from(Some("536870912\n"), Some("1024"), Some(MEMINFO)),
            Some((536_870_912, LimitSource::CgroupV2))
        );
    }

    #[test]
    fn unlimited_cgroups_fall_back_to_the_host() {
        assert_eq!(
            limit_from(Some("max\n"), Some("9223372036854771712\n"), Some(MEMINFO)),
            Some((8_029_184 * 1024, LimitSource::Host))
        );
    }

    #[test]
    fn cgroup_v1_limit_is_used_without_v2() {
        assert_eq!(
            limit_from(None, Some("2147483648"), Some(MEMINFO)),
            Some((2_147_483_648, LimitSource::CgroupV1))
        );
    }

    #[test]
    fn nothing_readable_is_none() {
        assert_eq!(limit_from(None, None, None), None);
        assert_eq!(limit_from(Some("max"), None, Some("garbage")), None);
    }

    #[test]
    fn this_machine_has_a_limit() {
        // Linux CI: /proc/meminfo always exists.
        let (bytes, _) = detect().expect("a memory limit on Linux");
        assert!(bytes > 64 << 20, "{bytes}");
    }
}
