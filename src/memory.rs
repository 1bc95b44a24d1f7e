//! Memory given back to the system after one-off work, where glibc would keep it.

/// Returns to the system the memory freed after a one-off piece of work
/// (the dialogue's load, the classifier's learning): glibc keeps freed
/// memory in the middle of its heaps mapped, and the bot's work, on tokio's
/// threads, allocates mostly from arenas of their own, so it would stay
/// resident. Nothing elsewhere.
pub fn give_back_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and touches no memory in use; it
    // only releases free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}
