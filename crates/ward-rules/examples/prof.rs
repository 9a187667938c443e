#![allow(clippy::unwrap_used)]
#[path = "../tests/support/sim.rs"]
mod sim;
use std::time::Instant;
use ward_rules::{Engine, Facts, RulesConfig};
fn main() {
    let mut sim = sim::Sim::new();
    let people = ["alice", "erin", "dave", "frank", "gus", "hana", "ivan", "judy"];
    let mut i = 0i64;
    while sim.events.len() < 100_000 {
        let t = i * 30;
        let grant = sim.granted(t, people[(i % 8) as usize], 1800);
        sim.first_use(t + 2, &grant);
        for k in 0..3 { sim.search(t + 10 + k * 60, &grant, 25); }
        sim.summary(t + 240, &grant, t + 3, t + 200, 12);
        if i % 3 == 0 { sim.release(t + 600, &grant); } else { sim.expire(t + 1800 + (i % 5), &grant); }
        if i % 2 == 0 { sim.refused_check(t + 5, "mallory", "logs:payments-api"); }
        i += 1;
    }
    let arg = std::env::args().nth(1).unwrap_or_default();
    let config = if arg.is_empty() { RulesConfig::default() } else {
        RulesConfig::from_table(&format!("[{arg}]\nenabled = false\n").parse().unwrap()).unwrap()
    };
    let start = Instant::now();
    let mut engine = Engine::new(config, Facts::default());
    let mut n = 0;
    for e in &sim.events { n += engine.observe(e).len(); }
    println!("{arg}: {:?} for {} events, {n} findings", start.elapsed(), sim.events.len());
    if std::env::var("HASH").is_ok() {
    let start = Instant::now();
    let mut h = 0;
    for e in &sim.events { h += e.compute_hash().len(); }
}
    println!("hashing alone: {:?} {h}", start.elapsed());
}
