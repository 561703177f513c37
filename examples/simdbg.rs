use sluice::sim::*;
use sluice::tcp::TcpConfig;
use std::time::Duration;
fn main() {
    let s = Scenario {
        seed: 1000,
        conns: 1,
        max_bytes: 1000,
        link: LinkConfig::default(),
        tcp: TcpConfig::default(),
        time_limit: Duration::from_secs(600),
        trace_port: None,
    };
    let o = s.run();
    println!("{o:#?}");
}
