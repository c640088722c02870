use std::io::BufRead;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    if path == "bench" {
        let qs: Vec<String> = std::io::BufReader::new(std::fs::File::open("/tmp/kq/corpus.jsonl").unwrap()).lines().map(|l| { let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap(); v["query"].as_str().unwrap().to_string() }).collect();
        let bytes: usize = qs.iter().map(|q| q.len()).sum();
        let t = std::time::Instant::now();
        let mut ok = 0;
        for _ in 0..3 { for q in &qs { if kqlc::syntax::parse(q).is_ok() { ok += 1; } } }
        let el = t.elapsed().as_secs_f64() / 3.0;
        let t2 = std::time::Instant::now();
        for q in &qs { kqlc::syntax::parser::recognize_only(q); }
        println!("recognize only: {:.3}s", t2.elapsed().as_secs_f64());
        println!("{} queries {} bytes in {:.3}s: {:.1} MB/s, {:.0} q/s ({ok})", qs.len(), bytes, el, bytes as f64 / el / 1e6, qs.len() as f64 / el);
        return;
    }
    if path.ends_with(".jsonl") {
        let verdicts: std::collections::HashMap<String, bool> = std::io::BufReader::new(std::fs::File::open("/tmp/kq/verdicts.jsonl").unwrap()).lines().map(|l| { let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap(); (v["id"].as_str().unwrap().to_string(), v["valid"].as_bool().unwrap()) }).collect();
        let (mut ok, mut ms_ok, mut both, mut lenient, mut rt_fail) = (0, 0, 0, 0, 0);
        for line in std::io::BufReader::new(std::fs::File::open(&path).unwrap()).lines() {
            let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            let id = v["id"].as_str().unwrap(); let q = v["query"].as_str().unwrap();
            let ms = verdicts[id];
            let r = kqlc::syntax::parse(q);
            if ms { ms_ok += 1; }
            match r {
                Ok(ast) => { ok += 1; if ms { both += 1 } else { lenient += 1; println!("LENIENT {id}"); }
                    let printed = ast.to_string();
                    match kqlc::syntax::parse(&printed) { Ok(a2) if a2 == ast => {}, Ok(_) => { rt_fail += 1; println!("RTDIFF {id}"); } Err(e) => { rt_fail += 1; println!("RTERR {id}: {} at {}\n{}", e.message, e.span.start, &printed[(e.span.start as usize).saturating_sub(80)..(e.span.start as usize + 40).min(printed.len())]); } }
                }
                Err(e) => if ms { let s = e.span.start as usize; let lo = q[..s].rfind('\n').map(|x| x+1).unwrap_or(0); let hi = q[s..].find('\n').map(|x| x+s).unwrap_or(q.len()); println!("FAIL {id}: {} | {:?} @{}", e.message, &q[lo..hi], s - lo); },
            }
        }
        println!("parsed {ok}; ms_ok {ms_ok}; both {both}; lenient {lenient}; roundtrip failures {rt_fail}");
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap();
    match kqlc::syntax::parse(&text) {
        Ok(q) => println!("{q}"),
        Err(e) => println!("ERR {e:?}"),
    }
}
