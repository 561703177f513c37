//! Counters declared once.
//!
//! [`declare_counters!`] declares a struct of `u64` counters, and
//! [`declare_labels!`] an enum whose variants label a counter array (drop
//! reasons, close reasons, TCP states). From that one list each derives what
//! the readers need: field names, the walk over every counter in declaration
//! order ([`Counters`]), the labels' names and order ([`Label`]). Publishing
//! across threads, summing shards, the JSON maps and the live line are built
//! on the walk, so a counter added to its struct appears in all of them, and
//! nothing converts counters by position by hand.
//!
//! Both macros sit at the bottom of the crate (like `time`), so the TCP
//! engine's counters are declared the same way without depending on `stats`.

use std::collections::BTreeMap;
use std::fmt;

/// A counter's name: its field, or the group (an array or nested struct's
/// field) and its name inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name {
    /// The array's or nested struct's field; "" for a plain counter.
    pub group: &'static str,
    pub name: &'static str,
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.name)
        } else {
            write!(f, "{}.{}", self.group, self.name)
        }
    }
}

/// A set of `u64` counters that can be walked in declaration order.
/// Implemented by [`declare_counters!`].
pub trait Counters: Copy + Default {
    /// How many counters, those of arrays and nested structs included.
    const LEN: usize;

    /// Calls `f` with every counter's name and value, in declaration order.
    fn each_mut<F: FnMut(Name, &mut u64)>(&mut self, f: &mut F);

    /// Calls `f` with every counter's name and value, in declaration order.
    fn each<F: FnMut(Name, u64)>(&self, mut f: F) {
        let mut copy = *self;
        copy.each_mut(&mut |n, v| f(n, *v));
    }

    /// Every counter's name, in declaration order.
    fn names() -> Vec<Name> {
        let mut out = Vec::with_capacity(Self::LEN);
        Self::default().each(|n, _| out.push(n));
        out
    }

    /// The values, in declaration order.
    fn values(&self) -> Vec<u64> {
        let mut out = Vec::with_capacity(Self::LEN);
        self.each(|_, v| out.push(v));
        out
    }

    /// Counters from values in declaration order (missing ones are 0).
    fn from_values(values: &[u64]) -> Self {
        let mut s = Self::default();
        let mut it = values.iter();
        s.each_mut(&mut |_, v| *v = it.next().copied().unwrap_or(0));
        s
    }

    /// Adds `other`, counter by counter.
    fn add(&mut self, other: &Self) {
        let o = other.values();
        let mut it = o.into_iter();
        self.each_mut(&mut |_, v| *v += it.next().unwrap_or(0));
    }

    /// Counters numbered in declaration order: `first`, `first + 1`, ... (tests
    /// use it to give every counter a value of its own).
    fn numbered(first: u64) -> Self {
        let mut s = Self::default();
        let mut k = first;
        s.each_mut(&mut |_, v| {
            *v = k;
            k += 1;
        });
        s
    }

    /// One counter by name (`retransmits`, or `tcp.retransmits`, `drops.tx_full`).
    fn get(&self, name: &str) -> Option<u64> {
        let mut found = None;
        self.each(|n, v| {
            if found.is_none() && n.to_string() == name {
                found = Some(v);
            }
        });
        found
    }
}

/// An enum whose variants label the counters of an array (a drop reason,
/// a close reason, a TCP state). Implemented by [`declare_labels!`].
pub trait Label: Copy + 'static {
    /// How many variants.
    const COUNT: usize;
    /// Every variant, in declaration order (a variant's index is its place here).
    const ALL: &'static [Self];
    /// The name readers see (JSON keys, the live line).
    fn label(self) -> &'static str;
}

/// An array counted by label, as a name → count map (for JSON).
pub fn by_label<L: Label>(counts: &[u64]) -> BTreeMap<&'static str, u64> {
    L::ALL
        .iter()
        .zip(counts)
        .map(|(l, c)| (l.label(), *c))
        .collect()
}

/// Declares a fieldless enum whose variants each carry their name, and
/// implements [`Label`] for it, plus `ALL`, `COUNT`, `name()` and `index()`
/// (the variant's place in `ALL`, which is also `as usize`).
///
/// ```ignore
/// declare_labels! {
///     /// Why a frame was dropped.
///     #[derive(Debug, Clone, Copy, PartialEq, Eq)]
///     pub enum Reason {
///         /// Failed to parse.
///         Malformed = "malformed",
///         TxFull = "tx_full",
///     }
/// }
/// ```
macro_rules! declare_labels {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $label:literal, )+
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$($label),+].len()] = [$($name::$variant),+];
            /// How many variants.
            pub const COUNT: usize = [$($label),+].len();

            /// The name readers see (JSON keys, the live line).
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $label, )+
                }
            }

            /// The variant's place in `ALL`.
            pub const fn index(self) -> usize {
                self as usize
            }
        }

        impl $crate::counters::Label for $name {
            const COUNT: usize = $name::COUNT;
            const ALL: &'static [$name] = &$name::ALL;
            fn label(self) -> &'static str {
                self.name()
            }
        }
    };
}
pub(crate) use declare_labels;

/// Declares a struct of counters and implements [`Counters`] for it. A field
/// is one of:
/// - `name,` a `u64` counter;
/// - `name: [L],` one `u64` per variant of `L` (a [`Label`]): `[u64; L::COUNT]`;
/// - `name: T,` a nested struct of counters (`T: Counters`; its counters are
///   named `name.counter`, one level deep).
///
/// Doc comments and visibility go on each field as usual.
///
/// ```ignore
/// declare_counters! {
///     #[derive(Debug, Clone, Copy, Default)]
///     pub struct Stats {
///         /// Frames received.
///         pub rx_packets,
///         pub drops: [DropReason],
///         pub tcp: TcpStats,
///     }
/// }
/// ```
macro_rules! declare_counters {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident { $($body:tt)* }
    ) => {
        $crate::counters::declare_counters!(
            @parse [$(#[$meta])* $vis struct $name] [] [] [] $($body)*
        );
    };
    // A plain counter.
    (@parse $head:tt [$($c:tt)*] $l:tt $n:tt
        $(#[$m:meta])* $v:vis $f:ident , $($rest:tt)*
    ) => {
        $crate::counters::declare_counters!(
            @parse $head [$($c)* ($(#[$m])* [$v] $f)] $l $n $($rest)*
        );
    };
    // An array counted by label.
    (@parse $head:tt $c:tt [$($l:tt)*] $n:tt
        $(#[$m:meta])* $v:vis $f:ident : [$lab:ty] , $($rest:tt)*
    ) => {
        $crate::counters::declare_counters!(
            @parse $head $c [$($l)* ($(#[$m])* [$v] $f $lab)] $n $($rest)*
        );
    };
    // A nested struct of counters.
    (@parse $head:tt $c:tt $l:tt [$($n:tt)*]
        $(#[$m:meta])* $v:vis $f:ident : $t:ty , $($rest:tt)*
    ) => {
        $crate::counters::declare_counters!(
            @parse $head $c $l [$($n)* ($(#[$m])* [$v] $f $t)] $($rest)*
        );
    };
    // Everything parsed: the struct and its walk.
    (@parse
        [$(#[$meta:meta])* $vis:vis struct $name:ident]
        [$( ($(#[$cm:meta])* [$cv:vis] $cf:ident) )*]
        [$( ($(#[$lm:meta])* [$lv:vis] $lf:ident $lab:ty) )*]
        [$( ($(#[$nm:meta])* [$nv:vis] $nf:ident $nt:ty) )*]
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[$cm])* $cv $cf: u64, )*
            $( $(#[$lm])* $lv $lf: [u64; <$lab as $crate::counters::Label>::COUNT], )*
            $( $(#[$nm])* $nv $nf: $nt, )*
        }

        impl $crate::counters::Counters for $name {
            const LEN: usize = 0
                $( + $crate::counters::declare_counters!(@one $cf) )*
                $( + <$lab as $crate::counters::Label>::COUNT )*
                $( + <$nt as $crate::counters::Counters>::LEN )*;

            fn each_mut<F: FnMut($crate::counters::Name, &mut u64)>(&mut self, f: &mut F) {
                #[allow(unused_imports)]
                use $crate::counters::{Counters as _, Label as _, Name};
                $( f(Name { group: "", name: stringify!($cf) }, &mut self.$cf); )*
                $(
                    for (l, v) in <$lab as $crate::counters::Label>::ALL
                        .iter()
                        .zip(self.$lf.iter_mut())
                    {
                        f(Name { group: stringify!($lf), name: l.label() }, v);
                    }
                )*
                $(
                    self.$nf.each_mut(&mut |n: Name, v: &mut u64| {
                        f(Name { group: stringify!($nf), name: n.name }, v)
                    });
                )*
            }
        }
    };
    (@one $f:ident) => { 1 };
}
pub(crate) use declare_counters;

#[cfg(test)]
mod tests {
    use super::*;

    declare_labels! {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Colour {
            Red = "red",
            /// Documented.
            Green = "green",
            Blue = "blue",
        }
    }

    declare_counters! {
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        struct Inner {
            x,
            y,
        }
    }

    declare_counters! {
        /// Documented.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        struct Outer {
            /// Documented.
            pub a,
            b,
            by_colour: [Colour],
            pub(crate) inner: Inner,
        }
    }

    #[test]
    fn labels_carry_their_names_and_order() {
        assert_eq!(Colour::COUNT, 3);
        assert_eq!(Colour::ALL, [Colour::Red, Colour::Green, Colour::Blue]);
        for (i, c) in Colour::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(*c as usize, i);
        }
        assert_eq!(Colour::Green.name(), "green");
        assert_eq!(<Colour as Label>::ALL.len(), 3);
    }

    #[test]
    fn walk_names_every_counter_once_in_order() {
        let names: Vec<String> = Outer::names().iter().map(|n| n.to_string()).collect();
        assert_eq!(
            names,
            [
                "a",
                "b",
                "by_colour.red",
                "by_colour.green",
                "by_colour.blue",
                "inner.x",
                "inner.y"
            ]
        );
        assert_eq!(Outer::LEN, names.len());
    }

    #[test]
    fn values_round_trip_and_add() {
        let o = Outer::numbered(1);
        assert_eq!(o.a, 1);
        assert_eq!(o.by_colour, [3, 4, 5]);
        assert_eq!(o.inner, Inner { x: 6, y: 7 });
        assert_eq!(Outer::from_values(&o.values()), o);
        let mut s = o;
        s.add(&o);
        assert_eq!(
            s.values(),
            o.values().iter().map(|v| 2 * v).collect::<Vec<_>>()
        );
        assert_eq!(o.get("by_colour.green"), Some(4));
        assert_eq!(o.get("inner.y"), Some(7));
        assert_eq!(o.get("nope"), None);
        assert_eq!(
            by_label::<Colour>(&o.by_colour),
            BTreeMap::from([("blue", 5), ("green", 4), ("red", 3)])
        );
    }
}
