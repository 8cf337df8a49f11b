//! A server's memory budget ([`ServerBuilder::memory_budget`]): the bytes
//! all of a server's connections hold together on their peers' account,
//! as each engine reports them ([`Connection::memory_held`]: incomplete
//! incoming messages, inflated data, output queued for peers that do not
//! read) plus what its front-end took to write.
//!
//! Three rules:
//! - **Backpressure.** A connection that holds at least [`MEMORY_BUDGET_SMALL_HOLDING`]
//!   reads only while the total is under the budget; otherwise it stops
//!   reading (its peer's writes stall in TCP) until memory is freed.
//! - **Small holders always read**, and are not counted: connections
//!   holding less than [`MEMORY_BUDGET_SMALL_HOLDING`] keep being served while the
//!   budget is exhausted (an echo of small messages keeps working), and
//!   cannot deadlock everyone. What they hold together is bounded by the
//!   connection limit instead.
//! - **Shedding.** When a stalled connection has waited for memory for
//!   [`ServerBuilder::memory_budget_timeout`], the connections holding the
//!   most are aborted with 1013 (try again later), largest first, until
//!   what the others hold is under the budget. Largest first: one peer
//!   sending a huge message, or refusing to read a huge reply, is the one
//!   that goes, and the fewest connections are closed to free the memory.
//!
//! The hot path takes no lock: a connection publishes its holding with
//! one relaxed atomic addition when it changes, none while it holds less
//! than [`MEMORY_BUDGET_SMALL_HOLDING`] (so a small-message echo never touches the
//! shared counter), and checks the total with one relaxed load before a
//! read. Locks are taken when a connection first holds that much (it joins
//! the budget's list then; idle and small-message connections never do),
//! when it ends, stalls, or sheds others.
//!
//! The total can pass the budget by what reads admitted just before it
//! was reached take: one read (64 KiB, or what a compressed read inflates
//! to, at most `max_message_size`) per worker thread.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use sockeye_proto::{CloseCode, Connection};
use tokio::time::Sleep;

use crate::output::Output;
use crate::policy::ServerBuilder;

/// Connections holding less than this are neither counted against the
/// budget nor stopped by it: one read's worth (the front-end reads at most
/// 64 KiB at a time).
pub const MEMORY_BUDGET_SMALL_HOLDING: usize = 64 * 1024;

/// The default [`ServerBuilder::memory_budget_timeout`].
pub const DEFAULT_MEMORY_BUDGET_TIMEOUT: Duration = Duration::from_secs(3);

/// The default [`ServerBuilder::memory_budget`] where the machine's memory
/// cannot be read (not Linux): 1 GiB.
pub const DEFAULT_MEMORY_BUDGET_FALLBACK: usize = 1 << 30;

/// The default budget: a quarter of the memory this process may use (the
/// smaller of `MemTotal` in `/proc/meminfo` and a cgroup v2 `memory.max`),
/// read once; [`DEFAULT_MEMORY_BUDGET_FALLBACK`] elsewhere.
pub(crate) fn default_memory_budget() -> usize {
    static DEFAULT: OnceLock<usize> = OnceLock::new();
    *DEFAULT.get_or_init(|| {
        let total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| parse_mem_total(&text));
        let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
            .ok()
            .and_then(|text| text.trim().parse::<usize>().ok());
        match (total, cgroup) {
            (Some(total), Some(cgroup)) => total.min(cgroup) / 4,
            (Some(memory), None) | (None, Some(memory)) => memory / 4,
            (None, None) => DEFAULT_MEMORY_BUDGET_FALLBACK,
        }
    })
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
fn parse_mem_total(meminfo: &str) -> Option<usize> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: usize = line
        .trim_start_matches("MemTotal:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// The budget shared by a [`ServerBuilder`] and its clones.
pub(crate) struct MemoryBudget {
    limit: usize,
    timeout: Duration,
    /// What members hold together (each counted once it holds at least
    /// [`MEMORY_BUDGET_SMALL_HOLDING`]).
    in_use: AtomicUsize,
    /// How many members wait for memory (`Waiting::stalled.len()`), read
    /// without the lock by members that free memory.
    stalled: AtomicUsize,
    waiting: Mutex<Waiting>,
    /// Every member, for choosing whom to shed.
    members: Mutex<Vec<Arc<Entry>>>,
    /// Members chosen to be shed so far, for the server's stats.
    shed: AtomicU64,
}

impl fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("limit", &self.limit)
            .field("timeout", &self.timeout)
            .field("in_use", &self.in_use.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Members stalled on the budget.
#[derive(Default)]
struct Waiting {
    stalled: Vec<Arc<Entry>>,
    /// Since when members have been stalled without memory being freed.
    exhausted_since: Option<Instant>,
}

/// One member's state, shared with the budget.
#[derive(Debug, Default)]
struct Entry {
    /// What the member is charged now.
    held: AtomicUsize,
    /// The budget chose it to be shed.
    shed: AtomicBool,
    /// It is in `Waiting::stalled`.
    stalled: AtomicBool,
    /// Its task, registered while it is charged.
    waker: AtomicWaker,
    /// Its index in `MemoryBudget::members`.
    slot: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here is left inconsistent by a panic in between.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryBudget {
    pub(crate) fn new(limit: usize, timeout: Duration) -> MemoryBudget {
        MemoryBudget {
            limit,
            timeout,
            in_use: AtomicUsize::new(0),
            stalled: AtomicUsize::new(0),
            waiting: Mutex::default(),
            members: Mutex::default(),
            shed: AtomicU64::new(0),
        }
    }

    /// The budget in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// How long members may stall before others are shed.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How many members were chosen to be shed so far.
    pub(crate) fn shed_count(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// What members hold now.
    pub(crate) fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Whether a member may read now.
    fn has_room(&self) -> bool {
        self.in_use.load(Ordering::Relaxed) < self.limit
    }

    /// A new connection's share, holding nothing: joins the budget when
    /// it first holds [`MEMORY_BUDGET_SMALL_HOLDING`].
    pub(crate) fn share(self: &Arc<Self>) -> Share {
        Share::Idle(self.clone())
    }

    /// A member, listed for shedding.
    fn join(self: &Arc<Self>) -> Box<Member> {
        let entry = Arc::new(Entry::default());
        {
            let mut members = lock(&self.members);
            entry.slot.store(members.len(), Ordering::Relaxed);
            members.push(entry.clone());
        }
        Box::new(Member {
            budget: self.clone(),
            entry,
            charged: 0,
            stall_timer: None,
        })
    }

    fn leave(&self, entry: &Arc<Entry>) {
        let mut members = lock(&self.members);
        let slot = entry.slot.load(Ordering::Relaxed);
        if members
            .get(slot)
            .is_some_and(|found| Arc::ptr_eq(found, entry))
        {
            members.swap_remove(slot);
            if let Some(moved) = members.get(slot) {
                moved.slot.store(slot, Ordering::Relaxed);
            }
        }
    }

    fn charge(&self, bytes: usize) {
        self.in_use.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Gives `bytes` back, and wakes the stalled members if there is room.
    fn release(&self, bytes: usize) {
        let before = self.in_use.fetch_sub(bytes, Ordering::Relaxed);
        if before - bytes < self.limit && self.stalled.load(Ordering::Relaxed) > 0 {
            self.wake_stalled();
        }
    }

    #[cold]
    fn wake_stalled(&self) {
        let stalled = {
            let mut waiting = lock(&self.waiting);
            waiting.exhausted_since = None;
            self.stalled.store(0, Ordering::Relaxed);
            std::mem::take(&mut waiting.stalled)
        };
        for entry in stalled {
            entry.stalled.store(false, Ordering::Relaxed);
            entry.waker.wake();
        }
    }

    /// Records `entry` as stalled at `now`; returns when shedding is due.
    #[cold]
    fn stall(&self, entry: &Arc<Entry>, now: Instant) -> Instant {
        let mut waiting = lock(&self.waiting);
        if !entry.stalled.swap(true, Ordering::Relaxed) {
            waiting.stalled.push(entry.clone());
            self.stalled.store(waiting.stalled.len(), Ordering::Relaxed);
        }
        *waiting.exhausted_since.get_or_insert(now) + self.timeout
    }

    /// Sheds the largest holders if members have been stalled for the
    /// timeout at `now`: marks them and wakes them (each aborts itself in
    /// its own task), until what the others hold is under three quarters
    /// of the budget.
    /// Members already marked count as freed. The next round, if memory
    /// stays short, comes a timeout later.
    #[cold]
    fn shed_largest(&self, now: Instant) {
        {
            let mut waiting = lock(&self.waiting);
            match waiting.exhausted_since {
                Some(since) if now >= since + self.timeout => {}
                // Memory was freed meanwhile, or another member shed.
                _ => return,
            }
            waiting.exhausted_since = Some(now);
        }
        let members = lock(&self.members);
        let mut left = self.in_use();
        let mut candidates = Vec::new();
        for entry in members.iter() {
            let held = entry.held.load(Ordering::Relaxed);
            if entry.shed.load(Ordering::Relaxed) {
                left = left.saturating_sub(held);
            } else if held > 0 {
                candidates.push((held, entry));
            }
        }
        candidates.sort_unstable_by_key(|&(held, _)| std::cmp::Reverse(held));
        // Down to three quarters of the budget, not just under it: the
        // connections that stalled meanwhile (well-behaved ones among
        // them) need room to finish their messages, or the next read
        // exhausts the budget again and they wait another round.
        let target = self.limit - self.limit / 4;
        for (held, entry) in candidates {
            if left < target {
                break;
            }
            entry.shed.store(true, Ordering::Relaxed);
            self.shed.fetch_add(1, Ordering::Relaxed);
            entry.waker.wake();
            left = left.saturating_sub(held);
        }
    }
}

/// A connection's share of its server's budget, kept by its front-end.
/// A connection that never holds [`MEMORY_BUDGET_SMALL_HOLDING`] (an idle
/// one, or one of small messages) costs the budget nothing: no allocation,
/// no entry in its list.
#[derive(Debug)]
pub(crate) enum Share {
    /// Never held enough to be counted.
    Idle(Arc<MemoryBudget>),
    /// Counted (or was).
    Joined(Box<Member>),
}

impl Share {
    /// The connection holds `held` bytes now: updates the budget's total
    /// if that changes what it is charged.
    #[inline]
    pub(crate) fn update(&mut self, held: usize) {
        match self {
            Share::Joined(member) => member.update(held),
            Share::Idle(_) if held < MEMORY_BUDGET_SMALL_HOLDING => {}
            Share::Idle(budget) => {
                let mut member = budget.join();
                member.update(held);
                *self = Share::Joined(member);
            }
        }
    }

    /// See [`Member::poll_shed`].
    #[inline]
    pub(crate) fn poll_shed(&self, cx: &mut Context<'_>) -> bool {
        match self {
            Share::Joined(member) => member.poll_shed(cx),
            Share::Idle(_) => false,
        }
    }

    /// See [`Member::poll_read`].
    #[inline]
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            Share::Joined(member) => member.poll_read(cx),
            Share::Idle(_) => Poll::Ready(()),
        }
    }
}

impl Share {
    /// The blocking front-end's [`Share::poll_read`]: blocks the thread
    /// until the connection may read (true), or for at most `max` (false;
    /// the front-end then runs its timers and its drain check, and asks
    /// again). Sheds the largest holders when the budget's timeout passes,
    /// as a stalled tokio connection does.
    pub(crate) fn wait_for_room(&mut self, max: Duration) -> bool {
        match self {
            Share::Joined(member) => member.wait_for_room(max),
            Share::Idle(_) => true,
        }
    }

    /// The event loop's [`Share::poll_read`], without a tokio timer (its
    /// thread has no runtime): `Ok` when the connection may read;
    /// otherwise the waker is registered as `poll_read` registers it, and
    /// `Err` says when the budget's timeout passes, for the loop's own
    /// timer. Asked again then, it sheds the largest holders, as a
    /// stalled tokio connection does.
    #[cfg(feature = "event-loop")]
    pub(crate) fn poll_read_at(
        &mut self,
        cx: &mut Context<'_>,
        now: Instant,
    ) -> Result<(), Instant> {
        match self {
            Share::Joined(member) => member.poll_read_at(cx, now),
            Share::Idle(_) => Ok(()),
        }
    }

    /// Whether the budget chose this connection to be shed (for the
    /// blocking front-end, which is woken by its read timeouts rather than
    /// by a waker).
    pub(crate) fn chosen_to_shed(&self) -> bool {
        match self {
            Share::Joined(member) => {
                member.charged > 0 && member.entry.shed.load(Ordering::Relaxed)
            }
            Share::Idle(_) => false,
        }
    }
}

/// Aborts a connection its budget chose to shed, for every front-end:
/// what it holds is dropped at once (the engine's input and queue, and
/// `output`, what the front-end took to write), and Close 1013 goes out
/// if it can follow what was written: output taken and not written whole
/// may end inside a frame, and then no Close may follow it.
pub(crate) fn shed(conn: &mut Connection, output: &mut Output) {
    shed_with(
        conn,
        output,
        CloseCode::TRY_AGAIN_LATER,
        "memory budget exhausted",
    );
}

/// [`shed`] with another close code: a subscriber too slow for its topic
/// is dropped the same way, with 1008.
pub(crate) fn shed_with(conn: &mut Connection, output: &mut Output, code: CloseCode, reason: &str) {
    let unwritten = !output.is_empty();
    *output = Output::default();
    let aborted = conn.abort(code, reason);
    if aborted.is_ok() && unwritten {
        while conn.poll_transmit().is_some() {}
    }
}

/// Wakes a thread parked in [`Share::wait_for_room`].
struct Unpark(std::thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// A connection counted by the budget. Dropping it gives back what it
/// was charged.
pub(crate) struct Member {
    budget: Arc<MemoryBudget>,
    entry: Arc<Entry>,
    /// What this member added to the budget's total.
    charged: usize,
    /// While stalled: when the budget may shed.
    stall_timer: Option<Pin<Box<Sleep>>>,
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Member")
            .field("charged", &self.charged)
            .field("stalled", &self.stall_timer.is_some())
            .finish_non_exhaustive()
    }
}

impl Member {
    /// See [`Share::update`].
    #[inline]
    fn update(&mut self, held: usize) {
        let charged = if held < MEMORY_BUDGET_SMALL_HOLDING {
            0
        } else {
            held
        };
        if charged != self.charged {
            self.recharge(charged);
        }
    }

    fn recharge(&mut self, charged: usize) {
        self.entry.held.store(charged, Ordering::Relaxed);
        if charged > self.charged {
            self.budget.charge(charged - self.charged);
        } else {
            if charged == 0 {
                // Whatever it was chosen for is gone.
                self.entry.shed.store(false, Ordering::Relaxed);
            }
            self.budget.release(self.charged - charged);
        }
        self.charged = charged;
    }

    /// Whether the budget chose this connection to be shed (it should
    /// abort at once). While it holds memory, registers the task, so that
    /// the budget can wake it to tell it.
    #[inline]
    fn poll_shed(&self, cx: &mut Context<'_>) -> bool {
        if self.charged == 0 {
            return false;
        }
        self.entry.waker.register(cx.waker());
        self.entry.shed.load(Ordering::Relaxed)
    }

    /// Ready when the connection may read: it holds little, or the total is
    /// under the budget. Otherwise the task is woken when memory is freed,
    /// when this connection is to be shed, or when it has waited for the
    /// budget's timeout (it then sheds the largest holders).
    #[inline]
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.charged == 0 || self.budget.has_room() {
            self.stall_timer = None;
            return Poll::Ready(());
        }
        self.poll_stalled(cx)
    }

    /// See [`Share::poll_read_at`].
    #[cfg(feature = "event-loop")]
    fn poll_read_at(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<(), Instant> {
        if self.charged == 0 || self.budget.has_room() {
            return Ok(());
        }
        self.entry.waker.register(cx.waker());
        let due = self.budget.stall(&self.entry, now);
        // Memory freed before this member was listed woke nobody.
        if self.budget.has_room() {
            return Ok(());
        }
        if due > now {
            return Err(due);
        }
        self.budget.shed_largest(now);
        // Never sooner than a millisecond, even with a zero timeout: the
        // shed members need their turn to free memory.
        Err(now + self.budget.timeout.max(Duration::from_millis(1)))
    }

    /// See [`Share::wait_for_room`].
    #[cold]
    fn wait_for_room(&mut self, max: Duration) -> bool {
        if self.charged == 0 || self.budget.has_room() {
            return true;
        }
        let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
        self.entry.waker.register(&waker);
        let until = Instant::now() + max;
        loop {
            if self.entry.shed.load(Ordering::Relaxed) {
                // The caller sees it and aborts.
                return true;
            }
            let now = Instant::now();
            let due = self.budget.stall(&self.entry, now);
            // Memory freed before this member was listed woke nobody.
            if self.budget.has_room() {
                return true;
            }
            if now >= until {
                return false;
            }
            let wake = if due <= now {
                self.budget.shed_largest(now);
                // Never sooner than a millisecond, even with a zero
                // timeout: the shed need their turn to free memory.
                now + self.budget.timeout.max(Duration::from_millis(1))
            } else {
                due
            };
            // Woken early when memory is freed or this one is shed.
            std::thread::park_timeout(wake.min(until) - now);
        }
    }

    #[cold]
    fn poll_stalled(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.entry.waker.register(cx.waker());
        let now = tokio::time::Instant::now();
        let mut due = self.budget.stall(&self.entry, now.into_std());
        // Memory freed before this member was listed woke nobody.
        if self.budget.has_room() {
            self.stall_timer = None;
            return Poll::Ready(());
        }
        if due <= now.into_std() {
            self.budget.shed_largest(now.into_std());
            // Never sooner than a millisecond, even with a zero timeout:
            // the shed members need their turn to free memory.
            due = now.into_std() + self.budget.timeout.max(Duration::from_millis(1));
        }
        let due = tokio::time::Instant::from_std(due);
        match &mut self.stall_timer {
            Some(timer) if timer.deadline() == due => {}
            Some(timer) => timer.as_mut().reset(due),
            None => self.stall_timer = Some(Box::pin(tokio::time::sleep_until(due))),
        }
        if let Some(timer) = &mut self.stall_timer
            && timer.as_mut().poll(cx).is_ready()
        {
            // Due now: look again at once.
            self.stall_timer = None;
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if self.charged > 0 {
            self.entry.held.store(0, Ordering::Relaxed);
            self.budget.release(self.charged);
        }
        self.budget.leave(&self.entry);
    }
}

impl ServerBuilder {
    /// The most memory this builder's connections (and its clones') may
    /// hold together on their peers' account: incomplete incoming messages
    /// (the engine's input and the message being assembled), inflated data
    /// (permessage-deflate), and output queued for peers that do not read.
    /// A connection that would take the total past it stops reading (its
    /// peer's writes stall) until memory is freed; if connections stay
    /// stalled for [`ServerBuilder::memory_budget_timeout`], the ones
    /// holding the most are closed with 1013 (try again later), largest
    /// first, until the others hold less than three quarters of it (room
    /// for the stalled to finish). Connections holding less than
    /// [`MEMORY_BUDGET_SMALL_HOLDING`] (64 KiB) are not counted and never stopped, so
    /// small messages keep flowing meanwhile.
    ///
    /// Default: a quarter of the memory the process may use (the smaller
    /// of the machine's `MemTotal` and the cgroup's `memory.max`, on
    /// Linux), or [`DEFAULT_MEMORY_BUDGET_FALLBACK`] (1 GiB) where that
    /// cannot be read. `usize::MAX` turns the budget off.
    ///
    /// Applies to every connection accepted through the builder: tokio
    /// ([`ServerBuilder::accept`] and its variants), hyper
    /// (`ServerBuilder::upgrade`) and [`crate::blocking`] (whose threads
    /// wait in their reads). Not counted: zlib's state (fixed
    /// per connection, bounded by the window bits), the kernel's socket
    /// buffers, and messages the application has received and keeps.
    ///
    /// Starts a new count: call it before cloning the builder.
    pub fn memory_budget(mut self, bytes: usize) -> ServerBuilder {
        let timeout = self.budget.timeout();
        self.budget = Arc::new(MemoryBudget::new(bytes, timeout));
        self
    }

    /// How long connections may stay stalled on an exhausted
    /// [`ServerBuilder::memory_budget`] before the largest holders are
    /// closed with 1013. Default: [`DEFAULT_MEMORY_BUDGET_TIMEOUT`] (3 s).
    ///
    /// Starts a new count: call it before cloning the builder.
    pub fn memory_budget_timeout(mut self, timeout: Duration) -> ServerBuilder {
        let limit = self.budget.limit();
        self.budget = Arc::new(MemoryBudget::new(limit, timeout));
        self
    }

    /// The [`ServerBuilder::memory_budget`] in bytes.
    pub fn get_memory_budget(&self) -> usize {
        self.budget.limit()
    }

    /// The bytes this builder's connections (and its clones') hold now,
    /// as counted against [`ServerBuilder::memory_budget`].
    pub fn memory_in_use(&self) -> usize {
        self.budget.in_use()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_is_read_in_bytes() {
        let meminfo = "MemTotal:       16316412 kB\nMemFree:         1234 kB\n";
        assert_eq!(parse_mem_total(meminfo), Some(16_316_412 * 1024));
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
        assert!(default_memory_budget() > 0);
    }

    #[test]
    fn small_holdings_are_not_counted_and_large_ones_are_exact() {
        let budget = Arc::new(MemoryBudget::new(1 << 20, Duration::from_secs(1)));
        let mut member = budget.share();
        member.update(MEMORY_BUDGET_SMALL_HOLDING - 1);
        assert_eq!(budget.in_use(), 0);
        assert!(
            lock(&budget.members).is_empty(),
            "small holders are not listed"
        );
        member.update(300_000);
        assert_eq!(budget.in_use(), 300_000);
        member.update(200_000);
        assert_eq!(budget.in_use(), 200_000);
        let mut other = budget.share();
        other.update(100_000);
        assert_eq!(budget.in_use(), 300_000);
        drop(member);
        assert_eq!(budget.in_use(), 100_000);
        other.update(10);
        assert_eq!(budget.in_use(), 0);
        assert_eq!(lock(&budget.members).len(), 1);
        drop(other);
        assert!(lock(&budget.members).is_empty());
    }

    #[test]
    fn the_largest_holders_are_shed_until_the_rest_fits() {
        let budget = Arc::new(MemoryBudget::new(1 << 20, Duration::from_secs(1)));
        let sizes = [200_000, 700_000, 100_000, 400_000];
        let members: Vec<_> = sizes
            .iter()
            .map(|&size| {
                let mut member = budget.join();
                member.update(size);
                member
            })
            .collect();
        let start = Instant::now();
        let stalled = &members[2].entry;
        let due = budget.stall(stalled, start);
        assert_eq!(due, start + Duration::from_secs(1));
        // Not yet due: nothing happens.
        budget.shed_largest(start);
        assert!(
            members
                .iter()
                .all(|m| !m.entry.shed.load(Ordering::Relaxed))
        );
        // 1.4 MB held: shedding 700 kB leaves 700 kB, under three
        // quarters of 1 MiB (786 kB).
        budget.shed_largest(due);
        let shed: Vec<bool> = members
            .iter()
            .map(|m| m.entry.shed.load(Ordering::Relaxed))
            .collect();
        assert_eq!(shed, [false, true, false, false]);
        // A later round counts the chosen one as freed: nothing more.
        budget.shed_largest(due + Duration::from_secs(5));
        assert_eq!(
            members
                .iter()
                .filter(|m| m.entry.shed.load(Ordering::Relaxed))
                .count(),
            1
        );
        // Freeing memory wakes the stalled and ends the exhaustion.
        drop(members);
        assert_eq!(budget.in_use(), 0);
        assert!(lock(&budget.waiting).stalled.is_empty());
        assert_eq!(lock(&budget.waiting).exhausted_since, None);
    }
}
