//! One byte of flags in a record (`has`, `set`): the shard's connection
//! record and the applications' per-connection state each keep theirs.

/// A record with a byte of flags: `has`/`set` over it.
pub(crate) trait Flags8 {
    /// The flags, to change.
    fn bits(&mut self) -> &mut u8;
    /// The flags, to read.
    fn bits_ref(&self) -> u8;

    /// Whether every bit of `f` is set (for one bit: whether it is).
    #[inline(always)]
    fn has(&self, f: u8) -> bool {
        self.bits_ref() & f != 0
    }

    /// Sets or clears the bits of `f`.
    #[inline(always)]
    fn set(&mut self, f: u8, on: bool) {
        if on {
            *self.bits() |= f;
        } else {
            *self.bits() &= !f;
        }
    }
}
