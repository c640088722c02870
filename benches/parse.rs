//! Parse throughput over every query in ../shared/corpus: MB/s of query text and
//! queries per second, on one core. Run with `cargo bench --bench parse`.

#[path = "../tests/common/mod.rs"]
mod common;

// The allocator of the kqlc binary (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn parse_corpus(c: &mut Criterion) {
    let queries: Vec<String> = common::corpus_queries()
        .into_iter()
        .map(|(_, q)| q)
        .collect();
    let bytes: usize = queries.iter().map(String::len).sum();
    let parse_all = || {
        let mut parsed = 0;
        for q in &queries {
            parsed += usize::from(kqlc::syntax::parse(q).is_ok());
        }
        parsed
    };
    println!(
        "corpus: {} queries, {} bytes, {} parse",
        queries.len(),
        bytes,
        parse_all()
    );

    let mut by_bytes = c.benchmark_group("parse_corpus_bytes");
    by_bytes.throughput(Throughput::BytesDecimal(bytes as u64));
    by_bytes.bench_function("all_queries", |b| b.iter(parse_all));
    by_bytes.finish();

    let mut by_queries = c.benchmark_group("parse_corpus_queries");
    by_queries.throughput(Throughput::Elements(queries.len() as u64));
    by_queries.bench_function("all_queries", |b| b.iter(parse_all));
    by_queries.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = parse_corpus
}
criterion_main!(benches);
