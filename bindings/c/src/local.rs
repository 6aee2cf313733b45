//! Thread-bound counter handles: the header's inline `vigilo_local_counter_add` adds on the
//! thread that made the handle with a load and a store and no call into the library (issue 29:
//! a call through a C function pointer costs twice an inlined Rust increment); on any other
//! thread it calls [`vigilo_local_counter_add_call`], which counts exactly from any thread.
//!
//! How the inline path stays sound: the handle holds a [`LocalCounter`], which reserves the
//! making thread's write slot (and so its cell of the series) until the handle is freed, even
//! past that thread's end; only that thread writes the cell. The inline path is taken when the
//! calling thread's *thread pointer* (`%fs:0` on x86-64, `tpidr_el0` on AArch64: the address of
//! its thread control block, distinct for every live thread) is the one recorded when the handle
//! was made. Another live thread never passes that check. A thread started after the maker ended
//! may reuse its thread control block and pass it: it then writes a cell no other thread writes
//! (the slot stays reserved), and its start is ordered after the maker's end (the C library
//! hands the block over under its own lock), so the maker's last store is what it loads.

use std::ffi::c_void;
use std::ptr;

use vigilo::{Counter, LocalCounter};

use crate::args::non_null;
use crate::error::{guard, quietly, vigilo_status};
use crate::metrics::vigilo_counter;

/// A counter handle bound to the thread that made it ([`vigilo_counter_local`]). Its fields are
/// read by the header's inline `vigilo_local_counter_add` (they are part of the ABI of this
/// version of the library) and must not be written; the library keeps more state after them.
#[repr(C)]
pub struct vigilo_local_counter {
    /// The thread pointer of the thread that made the handle; NULL when the inline path is off
    /// (that thread had no write slot of its own, or the platform is not one where the header
    /// reads the thread pointer).
    owner: *const c_void,
    /// That thread's own cell of the series (NULL with `owner`).
    cell: *mut u64,
}

/// What the library allocates behind a [`vigilo_local_counter`] pointer: the fields C reads
/// first (`repr(C)`: at offset 0), then the handles.
#[repr(C)]
struct LocalHandle {
    fast: vigilo_local_counter,
    /// Records from other threads, and reads.
    counter: Counter,
    /// Reserves the maker's write slot and keeps its cell allocated while the handle lives.
    _local: LocalCounter,
}

/// The calling thread's thread pointer, as the header's inline function reads it (the same
/// instruction), or NULL on a platform where the header has no inline path.
fn thread_pointer() -> *const c_void {
    #[cfg(all(
        any(target_os = "linux", target_os = "android"),
        target_arch = "x86_64",
        target_pointer_width = "64"
    ))]
    {
        let tp: *const c_void;
        // SAFETY: on x86-64 Linux `fs` is the thread pointer and the word at `fs:0` holds its own
        // address (the ELF TLS ABI, variant II), readable on every thread; the read has no other
        // effect.
        unsafe {
            std::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp,
                options(nostack, readonly, preserves_flags));
        }
        tp
    }
    #[cfg(all(
        any(target_os = "linux", target_os = "android"),
        target_arch = "aarch64"
    ))]
    {
        let tp: *const c_void;
        // SAFETY: reading `tpidr_el0`, the thread pointer register, has no effect.
        unsafe {
            std::arch::asm!("mrs {}, tpidr_el0", out(reg) tp,
                options(nomem, nostack, preserves_flags));
        }
        tp
    }
    #[cfg(not(all(
        any(target_os = "linux", target_os = "android"),
        any(
            all(target_arch = "x86_64", target_pointer_width = "64"),
            target_arch = "aarch64"
        )
    )))]
    {
        ptr::null()
    }
}

/// A handle on `counter`'s series bound to the calling thread: free it with
/// [`vigilo_local_counter_free`]. On this thread, `vigilo_local_counter_add` (inline in the
/// header) adds without a call into the library; from any other thread it calls the library and
/// counts exactly, as `vigilo_counter_add` does.
///
/// While the handle lives it reserves the thread's write slot, past the thread's end. Free it on
/// the thread that made it, or after that thread has ended (joined): freed on another thread at
/// the moment the maker ends, it may keep that slot for the rest of the process (counts stay
/// exact; later threads take other slots). The handle is independent of `counter`, which may be
/// freed first.
///
/// # Safety
/// `counter` is a live handle from `vigilo_monitor_counter`;
/// `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_counter_local(
    counter: *const vigilo_counter,
    out: *mut *mut vigilo_local_counter,
) -> vigilo_status {
    guard(|| {
        non_null(counter, "counter")?;
        non_null(out, "out")?;
        // SAFETY: non-null and live per the contract.
        let counter = unsafe { &*counter }.0.clone();
        let local = counter.local();
        let cell = local.own_cell();
        let owner = cell.map_or(ptr::null(), |_| thread_pointer());
        let handle = Box::new(LocalHandle {
            fast: vigilo_local_counter {
                owner,
                cell: cell.map_or(ptr::null_mut(), |c| c.as_ptr().cast()),
            },
            counter,
            _local: local,
        });
        // SAFETY: valid for a write per the contract. The pointer is the box's (its first field
        // is at offset 0), so `handle_of` and `vigilo_local_counter_free` get the box back.
        unsafe { out.write(Box::into_raw(handle).cast()) };
        Ok(())
    })
}

/// The library's side of a handle C passes back (NULL: none).
///
/// # Safety
/// `local` is NULL or a live handle from [`vigilo_counter_local`].
unsafe fn handle_of<'a>(local: *const vigilo_local_counter) -> Option<&'a LocalHandle> {
    // SAFETY: a live handle points to a `LocalHandle` (see `vigilo_counter_local`).
    unsafe { local.cast::<LocalHandle>().as_ref() }
}

/// Adds `n` to the counter through a call into the library, from any thread (NULL is a no-op):
/// what the header's inline `vigilo_local_counter_add` calls off its fast path, and what a
/// foreign-function interface that cannot use inline C functions calls instead.
///
/// # Safety
/// `local` is NULL or a live handle from [`vigilo_counter_local`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_local_counter_add_call(local: *const vigilo_local_counter, n: u64) {
    // SAFETY: per the contract. The calling thread's own cell (or the shared one): on the
    // maker's thread the same cell the inline path writes, written by that thread alone.
    if let Some(h) = unsafe { handle_of(local) } {
        h.counter.add(n);
    }
}

/// The counter's total, all threads (0 for NULL).
///
/// # Safety
/// As [`vigilo_local_counter_add_call`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_local_counter_value(local: *const vigilo_local_counter) -> u64 {
    // SAFETY: per the contract.
    unsafe { handle_of(local) }.map_or(0, |h| h.counter.value())
}

/// Frees a thread-bound handle (the series stays in the registry), giving back the write slot
/// it reserved if its thread has ended. NULL is a no-op. See [`vigilo_counter_local`] for the
/// thread to free it on.
///
/// # Safety
/// `local` is NULL or a handle from [`vigilo_counter_local`] not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_local_counter_free(local: *mut vigilo_local_counter) {
    if !local.is_null() {
        // SAFETY: from `Box::into_raw` of a `LocalHandle` in `vigilo_counter_local`, freed once
        // per the contract. Its `LocalCounter` is not `Send`: dropping it on another thread
        // gives back the slot's pin with atomic read-modify-writes, and only races the maker's
        // own exit, where the slot may stay reserved (documented above); no memory is shared
        // unsafely.
        quietly(|| drop(unsafe { Box::from_raw(local.cast::<LocalHandle>()) }));
    }
}
