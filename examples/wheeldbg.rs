use sluice::time::Instant;
use sluice::timer::Wheel;
fn main() {
    let mut w: Wheel<u32> = Wheel::new();
    w.schedule(Instant::from_nanos(1_010_000_000), 1);
    let mut out = vec![];
    w.advance(Instant::from_nanos(500_000_000), usize::MAX, &mut out);
    w.schedule(Instant::from_nanos(60_052_275_200 + 5000), 2);
    for i in 0..20 {
        let n = w.next_deadline();
        println!("{i}: next={n:?} len={}", w.len());
        let Some(n) = n else { break };
        w.advance(n, usize::MAX, &mut out);
        println!("   fired {:?}", out);
    }
}
