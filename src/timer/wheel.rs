//! The hierarchical timing wheel.
//!
//! Time is cut into ticks of `2^TICK_SHIFT` ns (about 1 µs). Level `l` has 64
//! slots of `64^l` ticks each, so the six levels cover `64^6` ticks (about
//! 19.5 hours); later deadlines are clamped to the far end and re-filed when
//! they come near. A timer lives in the level where its deadline first differs
//! from the current tick (as tokio's wheel does), and is cascaded down as time
//! reaches its slot. Entries sit in a slab with intrusive doubly linked lists,
//! so cancel and reschedule are O(1) and nothing allocates once the slab has grown.
//!
//! An entry is 24 bytes for an 8-byte value (one per connection, millions
//! of them): its value, its two links, and one word holding its deadline
//! (in ticks, the low `AT_TICK_BITS` bits: read against the clock, which is
//! never that far from it), its generation and its slot. Deadlines more
//! than `MAX_AHEAD` ticks (about 13 days) ahead fire then, early: owners
//! (a shard's connections) check their own deadline when woken.
//!
//! A slot of level 3 or above covers a quarter of a second or more: with
//! millions of connections (a 20 s think time each) one such slot holds
//! millions of timers, and re-filing them all when the clock reaches it
//! stalled the shard for most of a second (a cache miss each). Those slots
//! are cascaded a budget at a time (`CASCADE_WORK` timers a call) while the
//! levels below go on firing; slots of level 4 and above (17 s and more) are
//! kept in filing order (what a fixed-length timer filed first is due
//! first), except that a timer due in the slot's first sixty-fourth goes to
//! the front.

use crate::time::Instant;
use std::num::NonZeroU32;

const LEVELS: usize = 6;
const SLOTS: usize = 64;
const SLOT_BITS: u32 = 6;
const TICK_SHIFT: u32 = 10;
const NIL: u32 = u32::MAX;
/// Mask of the ticks one full turn of the top level covers.
const MAX_SPAN: u64 = (1u64 << (SLOT_BITS as usize * LEVELS)) - 1;
/// The lowest level whose slots are cascaded a budget at a time (a slot of
/// 64^3 ticks is about 268 ms; a turn of the level, about 17 s, is far
/// longer than any drain takes, so no new timer lands in a slot being drained).
const DRAIN_LEVEL: usize = 3;
/// The lowest level whose slots keep filing order (a slot of 64^4 ticks is
/// about 17 s: a fixed think time fills one with millions of timers at 10 M
/// connections, and a drain in filing order meets the earliest due first). A
/// level-3 slot drains within some tens of calls, so its order matters little.
const TAIL_LEVEL: usize = 4;
/// Timers re-filed from draining slots per `advance` call (bounds the time
/// one call spends on cascading: a cache miss each at millions of timers).
pub const CASCADE_WORK: usize = 4096;

/// A handle to a scheduled timer. Stale handles (after expiry or cancel) are
/// recognised by their generation and ignored (an entry's generation has
/// `AT_GEN_BITS` bits: a handle kept through that many reuses of its entry
/// would match again). Never zero, so `Option<TimerId>` is 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: u32,
    /// The entry's generation, plus one.
    generation: NonZeroU32,
}

impl TimerId {
    /// A handle no wheel gives out (its index is past any entry's): an
    /// owner's mark for a timer it keeps somewhere else (the shard's
    /// handshake queue). A wheel asked about it finds nothing.
    pub const OUTSIDE: TimerId = TimerId {
        index: u32::MAX,
        generation: NonZeroU32::MAX,
    };
}

// `Node::at`: slot (low bits), generation, deadline tick (high bits).
const AT_SLOT_BITS: u32 = 9;
/// `Node::at`'s slot for a free entry (level * 64 + slot is below 384).
const FREE: usize = (1 << AT_SLOT_BITS) - 1;
const AT_GEN_BITS: u32 = 13;
const AT_GEN_MASK: u32 = (1 << AT_GEN_BITS) - 1;
const AT_TICK_SHIFT: u32 = AT_SLOT_BITS + AT_GEN_BITS;
const AT_TICK_BITS: u32 = 64 - AT_TICK_SHIFT;
/// How far ahead of the clock a deadline is kept (2^40 ticks, about 13
/// days): half the range `Node::tick` reads unambiguously either way.
const MAX_AHEAD: u64 = 1 << (AT_TICK_BITS - 2);

#[derive(Debug, Clone)]
struct Node<T> {
    /// What is returned when it fires (a free entry keeps its last one).
    value: T,
    prev: u32,
    next: u32,
    /// Its slot (level * 64 + slot while scheduled; `FREE` when not), its
    /// generation, and its deadline tick modulo 2^`AT_TICK_BITS`.
    at: u64,
}

impl<T> Node<T> {
    #[inline(always)]
    fn slot(&self) -> usize {
        (self.at & FREE as u64) as usize
    }

    #[inline(always)]
    fn generation(&self) -> u32 {
        (self.at >> AT_SLOT_BITS) as u32 & AT_GEN_MASK
    }

    /// The deadline tick, read against the clock `elapsed` (it is within
    /// 2^(AT_TICK_BITS - 1) ticks of it either way: deadlines are kept within
    /// `MAX_AHEAD`, and the clock never runs that far past a live entry).
    #[inline(always)]
    fn tick(&self, elapsed: u64) -> u64 {
        // The difference, wrapped to AT_TICK_BITS and sign-extended.
        let diff = (self.at >> AT_TICK_SHIFT).wrapping_sub(elapsed) << AT_TICK_SHIFT;
        elapsed.wrapping_add(((diff as i64) >> AT_TICK_SHIFT) as u64)
    }

    /// Keeps deadline tick `tick` and slot `s` (the generation stays): one
    /// write of the word.
    #[inline(always)]
    fn file(&mut self, tick: u64, s: usize) {
        let generation = self.at & (u64::from(AT_GEN_MASK) << AT_SLOT_BITS);
        self.at = (tick << AT_TICK_SHIFT) | generation | s as u64;
    }
}

#[derive(Debug, Clone)]
struct Level {
    /// Slots holding timers (a slot being drained is not: `next_slot` skips it).
    occupied: u64,
    heads: [u32; SLOTS],
}

/// A timing wheel holding values of type `T`.
#[derive(Debug, Clone)]
pub struct Wheel<T> {
    levels: [Level; LEVELS],
    nodes: Vec<Node<T>>,
    free: u32,
    /// The current tick: everything before it has been processed, except
    /// what the draining slots still hold.
    elapsed: u64,
    len: usize,
    /// Slots (level * 64 + slot, level >= DRAIN_LEVEL) due and not yet
    /// wholly cascaded, the last one reached on top: it is drained first.
    draining: Vec<u16>,
    /// The last timer filed in each slot, by level * 64 + slot (levels >=
    /// TAIL_LEVEL only; 512 entries so that `& 511` needs no bounds check).
    /// Not kept up by `unlink`: `link_tail` checks it is still the slot's last.
    tails: [u32; 512],
}

/// The tick `now` is in (rounded down).
#[inline]
fn tick_of(t: Instant) -> u64 {
    t.as_nanos() >> TICK_SHIFT
}

/// The first tick at or after a deadline (rounded up): a timer never fires early.
#[inline]
fn deadline_tick(t: Instant) -> u64 {
    t.as_nanos().div_ceil(1 << TICK_SHIFT)
}

#[inline]
fn level_for(elapsed: u64, when: u64) -> usize {
    let significant = (elapsed ^ when) | (SLOTS as u64 - 1);
    let bit = 63 - significant.leading_zeros();
    ((bit / SLOT_BITS) as usize).min(LEVELS - 1)
}

impl<T: Copy> Default for Wheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy> Wheel<T> {
    pub fn new() -> Wheel<T> {
        Wheel {
            levels: std::array::from_fn(|_| Level {
                occupied: 0,
                heads: [NIL; SLOTS],
            }),
            nodes: Vec::new(),
            free: NIL,
            elapsed: 0,
            len: 0,
            draining: Vec::new(),
            tails: [NIL; 512],
        }
    }

    /// A wheel whose clock starts at `now` (deadlines before it fire at once).
    pub fn starting_at(now: Instant) -> Wheel<T> {
        let mut w = Wheel::new();
        w.elapsed = tick_of(now);
        w
    }

    pub fn with_capacity(now: Instant, n: usize) -> Wheel<T> {
        let mut w = Wheel::starting_at(now);
        w.nodes.reserve(n);
        w
    }

    /// Makes room for `n` more timers (no growing mid-run).
    pub fn reserve(&mut self, n: usize) {
        self.nodes.reserve(n);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Schedules `value` to expire at `deadline`.
    #[inline(always)]
    pub fn schedule(&mut self, deadline: Instant, value: T) -> TimerId {
        let tick = self.kept_tick(deadline);
        let (index, generation) = if self.free != NIL {
            let i = self.free;
            let n = &mut self.nodes[i as usize];
            self.free = n.next;
            n.value = value;
            (i, n.generation())
        } else {
            self.nodes.push(Node {
                value,
                prev: NIL,
                next: NIL,
                at: 0,
            });
            ((self.nodes.len() - 1) as u32, 0)
        };
        self.len += 1;
        self.link(index, tick);
        TimerId {
            index,
            // (A generation has AT_GEN_BITS bits: one more is never zero.)
            generation: NonZeroU32::new(generation + 1).expect("one more than a generation"),
        }
    }

    /// The tick a deadline is kept as: the first at or after it, no earlier
    /// than the clock (a past deadline is due now) and at most `MAX_AHEAD`
    /// ahead of it.
    #[inline(always)]
    fn kept_tick(&self, deadline: Instant) -> u64 {
        // (max then min, not `clamp`: the same here, without its check.)
        deadline_tick(deadline)
            .max(self.elapsed)
            .min(self.elapsed + MAX_AHEAD)
    }

    #[inline]
    fn valid(&self, id: TimerId) -> bool {
        self.nodes
            .get(id.index as usize)
            // (A free entry's generation has moved on from every handle to it.)
            .is_some_and(|n| n.generation() + 1 == id.generation.get())
    }

    /// Cancels a timer, returning its value (None if it already expired or was cancelled).
    #[inline(always)]
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        if !self.valid(id) {
            return None;
        }
        self.unlink(id.index);
        Some(self.release(id.index))
    }

    /// Moves a timer to a new deadline. False if the handle is stale.
    #[inline]
    pub fn reschedule(&mut self, id: TimerId, deadline: Instant) -> bool {
        if !self.valid(id) {
            return false;
        }
        self.unlink(id.index);
        let tick = self.kept_tick(deadline);
        self.link(id.index, tick);
        true
    }

    /// Whether a timer is scheduled to fire by `deadline` (in the tick it
    /// falls in or earlier; a past deadline: in the current tick): then it
    /// need not move for it.
    #[inline]
    pub fn fires_by(&self, id: TimerId, deadline: Instant) -> bool {
        // Against the kept tick of `deadline`, but for its cap (`MAX_AHEAD`
        // past the clock), which no live entry's tick exceeds.
        self.nodes.get(id.index as usize).is_some_and(|n| {
            n.generation() + 1 == id.generation.get()
                && n.tick(self.elapsed) <= deadline_tick(deadline).max(self.elapsed)
        })
    }

    /// When a timer fires at the earliest: the start of the first tick at
    /// or after its deadline (a deadline past `MAX_AHEAD` reads as that).
    pub fn deadline(&self, id: TimerId) -> Option<Instant> {
        self.valid(id).then(|| {
            let tick = self.nodes[id.index as usize].tick(self.elapsed);
            Instant::from_nanos(tick << TICK_SHIFT)
        })
    }

    #[inline]
    fn release(&mut self, index: u32) -> T {
        let n = &mut self.nodes[index as usize];
        debug_assert!(n.slot() != FREE, "released node holds a value");
        let v = n.value;
        // The next generation and the free slot, the deadline kept: one write.
        let generation = (n.generation() + 1) & AT_GEN_MASK;
        n.at = (n.at & !((1 << AT_TICK_SHIFT) - 1))
            | (u64::from(generation) << AT_SLOT_BITS)
            | FREE as u64;
        n.next = self.free;
        self.free = index;
        self.len -= 1;
        v
    }

    /// Files entry `index` under deadline tick `tick` (kept in the entry
    /// as it is filed).
    #[inline(always)]
    fn link(&mut self, index: u32, tick: u64) {
        // Past deadlines go to the current tick. Far ones are clamped to the end of
        // the current 64^6-tick block, so every timer's level-5 slot is in the
        // same rotation as the clock (no wrap ambiguity); they are re-filed there.
        let end_of_block = (self.elapsed | MAX_SPAN).max(self.elapsed + 1);
        let when = tick.max(self.elapsed).min(end_of_block);
        let level = level_for(self.elapsed, when);
        let shift = level as u32 * SLOT_BITS;
        let slot = ((when >> shift) as usize) & (SLOTS - 1);
        let head = self.levels[level].heads[slot];
        let s = (level * SLOTS + slot) as u16;
        if level >= TAIL_LEVEL {
            // Big slots keep filing order (they are cascaded front first, a
            // budget at a time), save what is due in their first sixty-fourth.
            if head == NIL {
                self.tails[s as usize & 511] = index;
            } else if (when >> (shift - SLOT_BITS)) & (SLOTS as u64 - 1) != 0
                && self.link_tail(index, level, slot, tick)
            {
                return;
            }
        }
        let l = &mut self.levels[level];
        l.heads[slot] = index;
        l.occupied |= 1 << slot;
        if head != NIL {
            self.nodes[head as usize].prev = index;
        }
        let n = &mut self.nodes[index as usize];
        n.prev = NIL;
        n.next = head;
        n.file(tick, s as usize);
    }

    /// `link`'s filing at the back of a (non-empty) slot, or at its front if
    /// the recorded last timer has left it since (it is then no longer live
    /// in this slot at the end of its list): order there is only a priority
    /// for the drain, never needed for correctness.
    #[inline]
    fn link_tail(&mut self, index: u32, level: usize, slot: usize, tick: u64) -> bool {
        let s = level * SLOTS + slot;
        let tail = self.tails[s & 511];
        let still_last = tail != index
            && self
                .nodes
                .get(tail as usize)
                .is_some_and(|t| t.slot() == s && t.next == NIL);
        if !still_last {
            return false;
        }
        self.tails[s & 511] = index;
        self.nodes[tail as usize].next = index;
        let n = &mut self.nodes[index as usize];
        n.prev = tail;
        n.next = NIL;
        n.file(tick, s);
        true
    }

    #[inline(always)]
    fn unlink(&mut self, index: u32) {
        let (prev, next, s) = {
            let n = &self.nodes[index as usize];
            (n.prev, n.next, n.slot())
        };
        let (level, slot) = (s / SLOTS, s % SLOTS);
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        } else {
            self.levels[level].heads[slot] = next;
            if next == NIL {
                self.levels[level].occupied &= !(1 << slot);
            }
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
    }

    /// The earliest occupied slot: (level, slot, the tick it starts at).
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        for (level, l) in self.levels.iter().enumerate() {
            if l.occupied == 0 {
                continue;
            }
            let shift = level as u32 * SLOT_BITS;
            let now_slot = ((self.elapsed >> shift) as usize) & (SLOTS - 1);
            let rotated = l.occupied.rotate_right(now_slot as u32);
            let slot = (rotated.trailing_zeros() as usize + now_slot) % SLOTS;
            let level_range = 1u64 << (shift + SLOT_BITS);
            let slot_range = 1u64 << shift;
            let level_start = self.elapsed & !(level_range - 1);
            let mut start = level_start + slot as u64 * slot_range;
            if start + slot_range <= self.elapsed {
                start += level_range;
            }
            // The lowest occupied level always holds the earliest deadline: a
            // timer sits at the lowest level its distance allows.
            return Some((level, slot, start.max(self.elapsed)));
        }
        None
    }

    /// When to call `advance` next: the start of the earliest occupied slot (at
    /// level 0 the first tick at or after the earliest deadline; above it a lower
    /// bound, where `advance` cascades and the next answer is closer); the
    /// current tick while a slot is being drained. `None` if empty.
    pub fn next_deadline(&self) -> Option<Instant> {
        let start = if self.draining.is_empty() {
            self.next_slot()?.2
        } else {
            self.elapsed
        };
        Some(Instant::from_nanos(start << TICK_SHIFT))
    }

    /// Moves the clock to `now` and pushes up to `budget` expired values into
    /// `out`. Returns how many. What did not fit in the budget stays due and is
    /// returned by the next call. Slots of level `DRAIN_LEVEL` and above are
    /// cascaded at most `CASCADE_WORK` timers a call (the rest next call: a
    /// timer they hold may then fire late by the calls that takes, never early).
    pub fn advance(&mut self, now: Instant, budget: usize, out: &mut Vec<T>) -> usize {
        let target = tick_of(now);
        let (mut fired, caught_up) = self.fire_or_cascade(target, budget, out);
        if self.draining.is_empty() {
            // The usual case: nothing left due by `target`, as
            // `fire_or_cascade` saw last (not looked up again).
            if caught_up {
                self.elapsed = self.elapsed.max(target);
            }
            return fired;
        }
        if fired < budget {
            fired += self.advance_draining(target, budget - fired, out);
        }
        if fired < budget && self.next_slot().is_none_or(|(_, _, s)| s > target) {
            self.elapsed = self.elapsed.max(target);
        }
        fired
    }

    /// `advance` while slots are draining: up to `CASCADE_WORK` timers
    /// re-filed from them, and what that makes due.
    #[cold]
    #[inline(never)]
    fn advance_draining(&mut self, target: u64, budget: usize, out: &mut Vec<T>) -> usize {
        let mut fired = 0;
        let mut work = 0;
        while fired < budget && !self.draining.is_empty() {
            // The clock may run ahead of a drain, but not out of the turn of
            // the level the drained slot is in (new timers could be filed in it).
            let limit = if self.must_finish_drains(target) {
                usize::MAX
            } else if work < CASCADE_WORK {
                CASCADE_WORK
            } else {
                break;
            };
            fired += self.drain(budget - fired, &mut work, limit, out);
            // What the drain re-filed may be due at once.
            fired += self.fire_or_cascade(target, budget - fired, out).0;
        }
        fired
    }

    /// Whether moving the clock to `tick` takes it out of the slot one level
    /// up from a draining slot (into the next turn of the draining slot's
    /// level, where new timers may be filed in it): then it must be drained first.
    fn must_finish_drains(&self, tick: u64) -> bool {
        self.draining.iter().any(|&s| {
            let shift = (s as u32 / SLOTS as u32 + 1) * SLOT_BITS;
            tick >> shift != self.elapsed >> shift
        })
    }

    /// The slots due by `target` below `DRAIN_LEVEL`: fires what is due (up
    /// to `budget`), cascades the rest; slots at or above it start draining.
    /// Returns how many fired, and whether it stopped because no slot (but
    /// draining ones) starts by `target` (not for want of budget).
    #[inline(always)]
    fn fire_or_cascade(&mut self, target: u64, budget: usize, out: &mut Vec<T>) -> (usize, bool) {
        let mut fired = 0;
        while fired < budget {
            let Some((level, slot, start)) = self.next_slot() else {
                return (fired, true);
            };
            if start > target {
                return (fired, true);
            }
            if !self.draining.is_empty() && self.must_finish_drains(start) {
                fired += self.drain(budget - fired, &mut 0, usize::MAX, out);
                continue;
            }
            self.elapsed = self.elapsed.max(start);
            if level >= DRAIN_LEVEL {
                // Drained a budget at a time, front first; hidden from
                // `next_slot` meanwhile.
                self.levels[level].occupied &= !(1 << slot);
                self.draining.push((level * SLOTS + slot) as u16);
                continue;
            }
            // Take the slot's list and either fire (due) or re-file (cascade) each.
            let mut i = self.levels[level].heads[slot];
            self.levels[level].heads[slot] = NIL;
            self.levels[level].occupied &= !(1 << slot);
            while i != NIL {
                let next = self.nodes[i as usize].next;
                // Due once the clock has reached its real deadline; otherwise it
                // cascades to a lower level (or, clamped far timers, further out).
                let d = self.nodes[i as usize].tick(self.elapsed);
                let due = d <= self.elapsed;
                if !due {
                    self.link(i, d);
                } else if fired < budget {
                    out.push(self.release(i));
                    fired += 1;
                } else {
                    // The budget is spent: the rest stays in the slot for the
                    // next call, unwalked (re-filing it, as this did, made a
                    // tick with n timers due cost n * n / budget).
                    self.nodes[i as usize].prev = NIL;
                    self.levels[level].heads[slot] = i;
                    self.levels[level].occupied |= 1 << slot;
                    break;
                }
                i = next;
            }
        }
        (fired, false)
    }

    /// Cascades timers from the draining slots (the last reached first) until
    /// `work` reaches `limit`, firing those due (up to `budget`; past it they
    /// go to the current tick). Returns how many fired.
    #[cold]
    #[inline(never)]
    fn drain(&mut self, budget: usize, work: &mut usize, limit: usize, out: &mut Vec<T>) -> usize {
        let mut fired = 0;
        while let Some(&s) = self.draining.last() {
            let (level, slot) = (s as usize / SLOTS, s as usize % SLOTS);
            let i = self.levels[level].heads[slot];
            if i == NIL {
                self.draining.pop();
                continue;
            }
            if *work >= limit {
                break;
            }
            self.unlink(i);
            let d = self.nodes[i as usize].tick(self.elapsed);
            if d <= self.elapsed && fired < budget {
                out.push(self.release(i));
                fired += 1;
            } else {
                self.link(i, d);
                *work += 1;
            }
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Instant {
        Instant::from_micros(n)
    }

    /// Everything due by `now`, as a shard gets it: `advance` again while
    /// `next_deadline` says more is due (a slot draining).
    fn advance_all<T: Copy>(w: &mut Wheel<T>, now: Instant, out: &mut Vec<T>) {
        loop {
            w.advance(now, usize::MAX, out);
            if w.next_deadline().is_none_or(|d| d > now) {
                break;
            }
        }
    }

    fn drain(w: &mut Wheel<u32>, now: Instant) -> Vec<u32> {
        let mut v = Vec::new();
        advance_all(w, now, &mut v);
        v
    }

    #[test]
    fn fires_in_order_and_not_early() {
        let mut w = Wheel::starting_at(us(0));
        let deadlines = [5u64, 70, 4_000, 300_000, 20_000_000, 3_000_000_000];
        for (i, d) in deadlines.iter().enumerate().rev() {
            w.schedule(us(*d), i as u32);
        }
        let mut fired = Vec::new();
        for (i, d) in deadlines.iter().enumerate() {
            assert!(drain(&mut w, us(d - 2)).is_empty(), "timer {i} fired early");
            let got = drain(&mut w, us(d + 2));
            assert_eq!(got, vec![i as u32], "at {d} us");
            fired.push(i);
        }
        assert!(w.is_empty());
    }

    #[test]
    fn cancel_and_reschedule() {
        let mut w = Wheel::starting_at(us(0));
        let a = w.schedule(us(100), 1);
        let b = w.schedule(us(200), 2);
        let c = w.schedule(us(300), 3);
        assert_eq!(w.cancel(b), Some(2));
        assert_eq!(w.cancel(b), None, "stale handle");
        assert!(w.reschedule(a, us(1_000_000)));
        // Kept in ticks: read back as the first tick at or after it.
        let tick_start = us(1_000_000).as_nanos().div_ceil(1 << TICK_SHIFT) << TICK_SHIFT;
        assert_eq!(w.deadline(a), Some(Instant::from_nanos(tick_start)));
        assert!(w.fires_by(a, us(1_000_000)) && w.fires_by(a, us(1_000_001)));
        assert!(!w.fires_by(a, us(999_998)), "a tick earlier");
        assert!(!w.fires_by(b, us(1_000_000)), "cancelled");
        assert_eq!(drain(&mut w, us(500)), vec![3]);
        assert!(!w.reschedule(c, us(10)), "expired handle is stale");
        assert_eq!(drain(&mut w, us(999_000)), Vec::<u32>::new());
        assert_eq!(drain(&mut w, us(1_000_002)), vec![1]);
        assert!(w.is_empty());
    }

    /// Issue 12: a connection's wheel entry (an 8-byte table handle) is 24
    /// bytes, and its handle in the connection's record 8 with its `Option`.
    #[test]
    fn an_entry_is_24_bytes_and_a_handle_8() {
        assert_eq!(std::mem::size_of::<Node<(u32, u32)>>(), 24);
        assert_eq!(std::mem::size_of::<Option<TimerId>>(), 8);
    }

    /// The deadline word read against a clock far from zero, either side,
    /// and a deadline beyond `MAX_AHEAD` kept at it (fires then).
    #[test]
    fn deadlines_are_read_against_the_clock() {
        let day = 86_400u64 * 1_000_000;
        let start = 400 * day; // past 2^AT_TICK_BITS ticks (52 days)
        let mut w = Wheel::starting_at(us(start));
        let a = w.schedule(us(start + 5 * day), 1);
        let b = w.schedule(us(start - day), 2);
        let c = w.schedule(us(start + 40 * day), 3);
        let tick = |t: u64| Instant::from_nanos(us(t).as_nanos().div_ceil(1024) * 1024);
        assert_eq!(w.deadline(a), Some(tick(start + 5 * day)));
        assert_eq!(
            w.deadline(b),
            Some(Instant::from_nanos(tick_of(us(start)) << 10))
        );
        let kept = (tick_of(us(start)) + MAX_AHEAD) << TICK_SHIFT;
        assert_eq!(w.deadline(c), Some(Instant::from_nanos(kept)));
        assert_eq!(drain(&mut w, us(start)), vec![2]);
        assert!(drain(&mut w, us(start + 5 * day - 1)).is_empty());
        assert_eq!(drain(&mut w, us(start + 5 * day + 1)), vec![1]);
        assert!(drain(&mut w, Instant::from_nanos(kept - 1)).is_empty());
        assert_eq!(drain(&mut w, Instant::from_nanos(kept)), vec![3]);
    }

    /// An entry's generation wraps at 2^AT_GEN_BITS; a handle from before
    /// the last reuse is stale.
    #[test]
    fn generations_wrap_and_stale_handles_stay_stale() {
        let mut w = Wheel::starting_at(us(0));
        let first = w.schedule(us(10), 0u32);
        let mut last = first;
        for k in 1..=(1u32 << AT_GEN_BITS) + 3 {
            assert_eq!(w.cancel(last), Some(k - 1));
            assert_eq!(w.cancel(last), None, "stale after cancel");
            last = w.schedule(us(10), k);
            assert_eq!(last.index, first.index, "the entry is reused");
        }
        assert_eq!(w.deadline(last), Some(Instant::from_nanos(10_240)));
        assert_eq!(drain(&mut w, us(11)), vec![(1u32 << AT_GEN_BITS) + 3]);
    }

    #[test]
    fn budget_is_honoured() {
        let mut w = Wheel::starting_at(us(0));
        for i in 0..100 {
            w.schedule(us(10 + i % 7), i);
        }
        let mut out = Vec::new();
        assert_eq!(w.advance(us(50), 30, &mut out), 30);
        assert_eq!(w.advance(us(50), 30, &mut out), 30);
        assert_eq!(w.advance(us(50), 100, &mut out), 40);
        let mut all = out.clone();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert!(w.is_empty());
    }

    #[test]
    fn past_and_far_deadlines() {
        let mut w = Wheel::starting_at(us(1_000_000));
        w.schedule(us(10), 1); // in the past: due now
        assert_eq!(drain(&mut w, us(1_000_000)), vec![1]);
        // Beyond the wheel's span (~19.5 h): clamped, re-filed, fires on time.
        let far = Instant::from_nanos(us(1_000_000).as_nanos() + 30 * 3600 * 1_000_000_000);
        w.schedule(far, 2);
        let mut t = us(1_000_000);
        let step = std::time::Duration::from_secs(3600);
        let mut got = Vec::new();
        while got.is_empty() {
            t += step;
            got = drain(&mut w, t);
            assert!(t <= far + step, "never fired");
        }
        assert_eq!(got, vec![2]);
        assert!(t >= far, "fired before its deadline");
    }

    #[test]
    fn wraps_around_slot_boundaries() {
        // Deadlines straddling every level's slot boundaries, from an odd start.
        let start = 63 * 64 * 64 + 61;
        let mut w = Wheel::starting_at(Instant::from_nanos(start << TICK_SHIFT));
        let mut expect = Vec::new();
        for k in 0..2000u64 {
            let d = start + 1 + k * k * 37 % 5_000_000;
            w.schedule(Instant::from_nanos(d << TICK_SHIFT), k as u32);
            expect.push((d, k as u32));
        }
        expect.sort();
        let mut order = Vec::new();
        let mut t = start;
        while !w.is_empty() {
            t += 997;
            let mut fired = drain(&mut w, Instant::from_nanos(t << TICK_SHIFT));
            for f in &fired {
                let d = expect.iter().find(|e| e.1 == *f).unwrap().0;
                assert!(d <= t, "timer {f} at tick {d} fired at {t}");
                assert!(d + 997 > t, "timer {f} at tick {d} fired late at {t}");
            }
            fired.sort();
            order.extend(fired);
        }
        assert_eq!(order.len(), 2000);
    }

    #[test]
    fn ten_million_timers() {
        let n: u32 = if cfg!(debug_assertions) {
            1_000_000
        } else {
            10_000_000
        };
        let mut w = Wheel::with_capacity(us(0), n as usize);
        let mut ids = Vec::with_capacity(n as usize);
        for i in 0..n {
            // Spread over 60 s.
            let d = (u64::from(i).wrapping_mul(2_654_435_761) % 60_000_000) + 1;
            ids.push(w.schedule(us(d), i));
        }
        // Cancel every tenth.
        for id in ids.iter().step_by(10) {
            assert!(w.cancel(*id).is_some());
        }
        let mut out = Vec::with_capacity(n as usize);
        let mut t = 0;
        let mut last_due = 0u64;
        while !w.is_empty() {
            t += 100_000; // 100 ms steps
            let before = out.len();
            advance_all(&mut w, us(t), &mut out);
            for v in &out[before..] {
                let d = (u64::from(*v).wrapping_mul(2_654_435_761) % 60_000_000) + 1;
                // Never early; late by less than one step plus one tick (deadlines
                // round up to the 1024 ns tick).
                let d_ns = us(d).as_nanos();
                let fires_from = d_ns.div_ceil(1 << TICK_SHIFT) << TICK_SHIFT;
                assert!(
                    d <= t && fires_from + 100_000_000 > us(t).as_nanos(),
                    "timer {v} due {d} fired at {t}"
                );
                last_due = last_due.max(d);
            }
        }
        assert_eq!(out.len(), (n - n.div_ceil(10)) as usize);
        println!("{} timers fired, last due at {last_due} us", out.len());
    }

    /// Which level a test timer sits at (None: fired or cancelled).
    fn level_of(w: &Wheel<u32>, id: TimerId) -> Option<usize> {
        w.valid(id)
            .then(|| w.nodes[id.index as usize].slot() / SLOTS)
    }

    #[test]
    fn a_big_slot_is_cascaded_a_budget_at_a_time_in_filing_order() {
        // 4 * CASCADE_WORK timers due over the same level-4 slot (17.2 s of
        // 1024 ns ticks), filed in deadline order as a fixed think time files
        // them, from a clock just before that slot.
        let slot4 = 1u64 << (4 * SLOT_BITS);
        let start = 5 * slot4 - 10;
        let t = |tick: u64| Instant::from_nanos(tick << TICK_SHIFT);
        let mut w = Wheel::starting_at(t(start));
        let n = 4 * CASCADE_WORK as u64;
        let step = (slot4 - 200) / n;
        let ids: Vec<TimerId> = (0..n)
            .map(|k| w.schedule(t(5 * slot4 + 200 + k * step), k as u32))
            .collect();
        assert!(ids.iter().all(|id| level_of(&w, *id) == Some(4)));
        // A short timer filed after them, due 100 ticks into the slot.
        let short = w.schedule(t(5 * slot4 + 100), u32::MAX);
        // The clock reaches the slot: one call cascades CASCADE_WORK of them,
        // the front of the slot first (the short timer, then filing order).
        let mut out = Vec::new();
        w.advance(t(5 * slot4), usize::MAX, &mut out);
        assert!(out.is_empty());
        let left = ids
            .iter()
            .filter(|id| level_of(&w, **id) == Some(4))
            .count();
        assert_eq!(left, (n as usize) - CASCADE_WORK + 1, "one budget re-filed");
        assert!(
            level_of(&w, short).unwrap() < 4,
            "the slot's front went first"
        );
        assert!(
            ids[..CASCADE_WORK - 1]
                .iter()
                .all(|id| level_of(&w, *id).unwrap() < 4)
        );
        assert!(
            w.next_deadline().unwrap() <= t(5 * slot4),
            "more to drain now"
        );
        // The short timer fires on time while the rest still drains.
        w.advance(t(5 * slot4 + 100), usize::MAX, &mut out);
        assert_eq!(out, vec![u32::MAX]);
        assert!(ids.iter().any(|id| level_of(&w, *id) == Some(4)));
        // Stepping through the slot, every timer fires once, never early, and
        // (the drain keeping ahead of the clock) never later than one step.
        out.clear();
        let mut now = 5 * slot4 + 100;
        while !w.is_empty() {
            now += step * 64;
            let before = out.len();
            w.advance(t(now), usize::MAX, &mut out);
            for v in &out[before..] {
                let due = 5 * slot4 + 200 + u64::from(*v) * step;
                assert!(
                    due <= now && due + step * 64 > now,
                    "{v} due {due} at {now}"
                );
            }
        }
        assert_eq!(out.len(), n as usize);
    }

    #[test]
    fn timers_in_a_draining_slot_can_be_cancelled_and_moved() {
        let slot4 = 1u64 << (4 * SLOT_BITS);
        let t = |tick: u64| Instant::from_nanos(tick << TICK_SHIFT);
        let mut w = Wheel::starting_at(t(slot4 - 1));
        let n = 3 * CASCADE_WORK as u64;
        let ids: Vec<TimerId> = (0..n)
            .map(|k| w.schedule(t(slot4 + 64 + k * 4096), k as u32))
            .collect();
        let mut out = Vec::new();
        w.advance(t(slot4), usize::MAX, &mut out);
        assert!(out.is_empty());
        // The last ones are still in the draining slot.
        let tail = ids[ids.len() - 1];
        let before_tail = ids[ids.len() - 2];
        let first_left = ids
            .iter()
            .position(|id| level_of(&w, *id) == Some(4))
            .unwrap();
        assert_eq!(level_of(&w, tail), Some(4));
        assert_eq!(w.cancel(tail), Some(n as u32 - 1));
        assert_eq!(w.cancel(ids[first_left]), Some(first_left as u32));
        assert!(w.reschedule(before_tail, t(slot4 + 10)));
        w.advance(t(slot4 + 10), usize::MAX, &mut out);
        assert_eq!(out, vec![n as u32 - 2]);
        out.clear();
        while !w.is_empty() {
            w.advance(t(slot4 + 64 + n * 4096), usize::MAX, &mut out);
        }
        out.sort();
        let want: Vec<u32> = (0..n as u32 - 2)
            .filter(|&k| k != first_left as u32)
            .collect();
        assert_eq!(out, want);
        assert!(w.draining.is_empty());
        assert_eq!(w.levels.iter().map(|l| l.occupied).sum::<u64>(), 0);
    }

    proptest::proptest! {
        /// Against a model (a sorted list): random schedule, cancel, reschedule
        /// and advance; everything fires exactly once, never early, and no later
        /// than the advance that reaches its deadline.
        #[test]
        fn matches_a_model(ops in proptest::collection::vec((0u8..4, 0u64..2_000_000_000_000, 0usize..64), 1..300)) {
            let mut w: Wheel<u32> = Wheel::starting_at(Instant::from_nanos(5_000_000));
            let mut model: std::collections::HashMap<u32, (TimerId, u64)> = Default::default();
            let mut now = 5_000_000u64;
            let mut next_val = 0u32;
            for (op, x, pick) in ops {
                match op {
                    0 | 1 => {
                        let d = now + x % 3_000_000_000_000;
                        let id = w.schedule(Instant::from_nanos(d), next_val);
                        model.insert(next_val, (id, d));
                        next_val += 1;
                    }
                    2 => {
                        if let Some(k) = model.keys().copied().nth(pick % model.len().max(1)) {
                            let (id, _) = model.remove(&k).unwrap();
                            proptest::prop_assert_eq!(w.cancel(id), Some(k));
                        }
                    }
                    _ => {
                        now += x % 50_000_000_000;
                        let mut out = Vec::new();
                        advance_all(&mut w, Instant::from_nanos(now), &mut out);
                        for v in out {
                            let (_, d) = model.remove(&v).expect("fired once");
                            proptest::prop_assert!(d <= now, "early: due {} now {}", d, now);
                        }
                        for (_, d) in model.values() {
                            // Ticks are 1024 ns: a timer fires in the first tick wholly after its deadline.
                            proptest::prop_assert!(d.div_ceil(1 << TICK_SHIFT) > now >> TICK_SHIFT, "late: due {} now {}", d, now);
                        }
                        // `fires_by` is "kept no later than the query's kept tick".
                        for (id, d) in model.values() {
                            for q in [d.saturating_sub(x % 5_000), *d, d + x % 5_000, now.saturating_sub(x % 3_000), u64::MAX] {
                                let want = w.kept_tick(Instant::from_nanos(*d)) <= w.kept_tick(Instant::from_nanos(q));
                                proptest::prop_assert_eq!(w.fires_by(*id, Instant::from_nanos(q)), want, "due {} asked {} now {}", d, q, now);
                            }
                        }
                    }
                }
                proptest::prop_assert_eq!(w.len(), model.len());
            }
        }
    }
}
