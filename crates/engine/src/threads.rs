//! Work handed to a scoped thread, done on the calling thread instead when the system has no
//! thread to give: the engine's parallel paths (reading a large `nginx.conf`) are only faster,
//! never a new way to fail.

use std::thread::{Scope, ScopedJoinHandle};

/// How many threads a parallel path uses: one per core, at most eight.
#[must_use]
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Work started by [`spawn_or_run`].
#[derive(Debug)]
pub enum Task<'scope, T> {
    Spawned(ScopedJoinHandle<'scope, T>),
    /// No thread could be started: the work was done by the caller.
    Done(T),
}

impl<T> Task<'_, T> {
    /// The result; a panic on the thread is raised again here.
    pub fn join(self) -> T {
        match self {
            Task::Spawned(handle) => handle
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            Task::Done(value) => value,
        }
    }
}

/// Run `work` on a thread of `scope` named `name`, or right here if none can be started.
pub fn spawn_or_run<'scope, T, F>(
    scope: &'scope Scope<'scope, '_>,
    name: &str,
    work: F,
) -> Task<'scope, T>
where
    F: FnOnce() -> T + Clone + Send + 'scope,
    T: Send + 'scope,
{
    match std::thread::Builder::new()
        .name(name.to_string())
        .spawn_scoped(scope, work.clone())
    {
        Ok(handle) => Task::Spawned(handle),
        Err(_) => Task::Done(work()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_comes_back_and_a_panic_is_raised_again() {
        let data = [1, 2, 3];
        let sum = std::thread::scope(|s| spawn_or_run(s, "t", || data.iter().sum::<i32>()).join());
        assert_eq!(sum, 6);
        let caught = std::panic::catch_unwind(|| {
            std::thread::scope(|s| spawn_or_run(s, "t", || -> i32 { panic!("boom") }).join())
        });
        assert!(caught.is_err());
        assert!((1..=8).contains(&workers()));
    }
}
