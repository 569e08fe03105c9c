//! Operating-system limits the server needs to know about: every socket is an open file, and
//! running out of them (`EMFILE`) stalls accepts for everyone, health checks included.

/// Files kept free for the database pool, Redis, logs and the like.
const RESERVED_FILES: u64 = 256;

/// Raises the soft open-file limit to the hard limit and returns how many client sockets
/// the server can hold with room to spare (None where the limit cannot be read).
pub fn raise_open_files() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid pointer to a local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit through a valid pointer to a local.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    let files = limit.rlim_cur;
    tracing::info!(
        open_files = files,
        sockets = files.saturating_sub(RESERVED_FILES),
        "open-file limit (soft raised to hard)"
    );
    Some(files.saturating_sub(RESERVED_FILES))
}
