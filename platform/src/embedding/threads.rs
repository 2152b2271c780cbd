//! How the model's work is spread over the CPUs the process may use.
//!
//! Measured on two cores with batches of 32 short memories: one batched pass on both cores
//! embedded 1.4 times as many texts per second as a pass on one core, while two passes of one
//! core each, side by side, embedded 2.0 times as many. A pass split over cores waits at every
//! matrix multiplication and elementwise op for its slowest thread, and under load that thread
//! is often preempted by the HTTP handlers and the stores. So by default the platform runs one
//! pass per CPU (at most [`MAX_DEFAULT_PASSES`], which bounds activation memory), each on
//! `CPUs / passes` threads, and [`super::batching`] keeps that many batches in flight.
//!
//! A search query's single-sequence pass keeps a pool of one thread per CPU of its own: alone on
//! an idle machine it is latency-bound, and splitting it still pays.
//!
//! candle sizes its passes from `RAYON_NUM_THREADS`, which it reads at every multiplication, so
//! the binary sets that variable before any thread starts ([`InferencePlan::apply_to_process`]).
//! A value already in the environment wins and sets the threads per pass.

use std::num::NonZeroUsize;

/// Most passes run at once unless `embedding.passes` asks for more: each holds its own
/// activations (tens of MB for a batch of long texts).
pub const MAX_DEFAULT_PASSES: usize = 4;

/// The variable candle (and rayon's global pool) reads for the threads of one pass.
const THREADS_VARIABLE: &str = "RAYON_NUM_THREADS";

/// How many batched passes run at once and how many threads each one uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InferencePlan {
    /// Batched forward passes allowed at the same time.
    pub passes: usize,
    /// Threads of one batched pass.
    pub threads_per_pass: usize,
}

impl InferencePlan {
    /// The plan for this process: `passes_setting` 0 means one pass per CPU (at most
    /// [`MAX_DEFAULT_PASSES`]); `RAYON_NUM_THREADS`, when set, fixes the threads per pass.
    pub fn for_this_process(passes_setting: usize) -> Self {
        let threads_override = std::env::var(THREADS_VARIABLE)
            .ok()
            .and_then(|value| value.trim().parse::<usize>().ok())
            .filter(|&threads| threads > 0);
        Self::for_cpus(available_cpus(), passes_setting, threads_override)
    }

    /// The plan for `cpus` CPUs; `threads_override` is a threads-per-pass figure set by hand.
    pub fn for_cpus(cpus: usize, passes_setting: usize, threads_override: Option<usize>) -> Self {
        let cpus = cpus.max(1);
        let passes = match (passes_setting, threads_override) {
            (0, Some(threads)) => (cpus / threads).clamp(1, MAX_DEFAULT_PASSES),
            (0, None) => cpus.min(MAX_DEFAULT_PASSES),
            (passes, _) => passes,
        };
        let threads_per_pass = threads_override.unwrap_or((cpus / passes).max(1));
        Self {
            passes,
            threads_per_pass,
        }
    }

    /// Tells candle how many threads one pass may use (unless `RAYON_NUM_THREADS` is already
    /// set) and shortens the idle spinning of its elementwise pool.
    ///
    /// # Safety
    /// Changes the process environment: call it before any other thread starts (first thing in
    /// `main`, before the async runtime), as `std::env::set_var` requires.
    pub unsafe fn apply_to_process(&self) {
        if std::env::var_os(THREADS_VARIABLE).is_none() {
            // SAFETY: the caller guarantees no other thread is running yet.
            unsafe { std::env::set_var(THREADS_VARIABLE, self.threads_per_pass.to_string()) };
        }
        // SAFETY: as above.
        unsafe { super::minilm::limit_idle_spinning() };
    }
}

/// CPUs this process may run on: its affinity mask and cgroup CPU quota, as the standard
/// library reads them; 1 when they cannot be read.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_single_threaded_pass_per_cpu_by_default() {
        let plan = InferencePlan::for_cpus(2, 0, None);
        assert_eq!(
            plan,
            InferencePlan {
                passes: 2,
                threads_per_pass: 1,
            }
        );
    }

    #[test]
    fn many_cpus_share_a_bounded_number_of_passes() {
        let plan = InferencePlan::for_cpus(16, 0, None);
        assert_eq!(plan.passes, MAX_DEFAULT_PASSES);
        assert_eq!(plan.threads_per_pass, 4);
    }

    #[test]
    fn configured_passes_split_the_cpus() {
        let plan = InferencePlan::for_cpus(8, 1, None);
        assert_eq!((plan.passes, plan.threads_per_pass), (1, 8));
        let plan = InferencePlan::for_cpus(2, 6, None);
        assert_eq!((plan.passes, plan.threads_per_pass), (6, 1));
    }

    #[test]
    fn threads_set_by_hand_decide_the_default_passes() {
        let plan = InferencePlan::for_cpus(8, 0, Some(2));
        assert_eq!((plan.passes, plan.threads_per_pass), (4, 2));
        let plan = InferencePlan::for_cpus(2, 0, Some(2));
        assert_eq!((plan.passes, plan.threads_per_pass), (1, 2));
        let plan = InferencePlan::for_cpus(4, 3, Some(1));
        assert_eq!((plan.passes, plan.threads_per_pass), (3, 1));
    }

    #[test]
    fn a_machine_that_reports_no_cpus_gets_one_pass() {
        let plan = InferencePlan::for_cpus(0, 0, None);
        assert_eq!((plan.passes, plan.threads_per_pass), (1, 1));
    }
}
