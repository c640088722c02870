//! Not a benchmark: a loop for profilers (`perf record cargo bench --bench profile_parse`).
#[path = "../tests/common/mod.rs"]
mod common;
// The allocator of the kqlc binary (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let queries: Vec<String> = common::corpus_queries()
        .into_iter()
        .map(|(_, q)| q)
        .collect();
    let bytes: usize = queries.iter().map(String::len).sum();
    let which = std::env::args().nth(1).unwrap_or_default();
    let t = std::time::Instant::now();
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let mut ok = 0;
    for _ in 0..rounds {
        for q in &queries {
            if which == "valid" && q.is_empty() {
                continue;
            }
            ok += usize::from(kqlc::syntax::parse(q).is_ok());
        }
    }
    let secs = t.elapsed().as_secs_f64() / rounds as f64;
    let mut ok_t = 0.0;
    let mut err_t = 0.0;
    for q in &queries {
        let t = std::time::Instant::now();
        let r = kqlc::syntax::parse(q).is_ok();
        if r {
            ok_t += t.elapsed().as_secs_f64()
        } else {
            err_t += t.elapsed().as_secs_f64()
        }
    }
    println!("valid queries {ok_t:.3}s, failing {err_t:.3}s");
    println!(
        "{:.1} MB/s, {:.0} queries/s ({ok})",
        bytes as f64 / secs / 1e6,
        queries.len() as f64 / secs
    );
}
