//! Process limits raised at start.
//!
//! Every client and upstream connection holds a file descriptor, and services are commonly
//! started with a soft `RLIMIT_NOFILE` of 1024, which would cap the gateway near 500 proxied
//! connections whatever the hardware. Like nginx with `worker_rlimit_nofile`, the gateway raises
//! its soft limit to the hard limit (the most an unprivileged process may take) and logs it.

use std::io;

/// The largest `RLIMIT_NOFILE` the kernel allows when the hard limit is unlimited.
fn nr_open() -> libc::rlim_t {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20)
}

fn get() -> io::Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the struct we own and pass by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim)
}

/// Raises the soft open-file limit to the hard limit. Returns `(old, new)` when it changed.
pub fn raise_nofile() -> io::Result<Option<(libc::rlim_t, libc::rlim_t)>> {
    let mut lim = get()?;
    let target = if lim.rlim_max == libc::RLIM_INFINITY {
        nr_open()
    } else {
        lim.rlim_max
    };
    if lim.rlim_cur >= target {
        return Ok(None);
    }
    let old = lim.rlim_cur;
    lim.rlim_cur = target;
    // SAFETY: setrlimit reads one `rlimit` from a struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Some((old, target)))
}

/// [`raise_nofile`], with its outcome logged.
pub fn raise_nofile_logged() {
    match raise_nofile() {
        Ok(Some((old, new))) => {
            tracing::info!("raised the open-file limit (RLIMIT_NOFILE) from {old} to {new}")
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit (RLIMIT_NOFILE)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        let before = get().unwrap();
        let hard = before.rlim_max;
        // One below the hard limit: other tests of this process run meanwhile and must not run
        // out of descriptors.
        let target = if hard == libc::RLIM_INFINITY {
            nr_open()
        } else {
            hard
        };
        let lowered = libc::rlimit {
            rlim_cur: target - 1,
            rlim_max: hard,
        };
        // SAFETY: as in `raise_nofile`; lowering the soft limit is always allowed.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
        let changed = raise_nofile().unwrap();
        assert_eq!(get().unwrap().rlim_cur, target);
        assert_eq!(changed, Some((target - 1, target)));
        // Already at the hard limit: nothing to do.
        assert_eq!(raise_nofile().unwrap(), None);
    }
}
