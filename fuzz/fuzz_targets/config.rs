//! The plaintext `config`, locks and prune records: `Config::decode`, `Lock::decode` and
//! `PruneRecord::decode` on hostile JSON, each with a round trip when it accepts; and retention's
//! duration parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sophon::format::config::{Config, Lock, MAX_PACK_SIZE, MIN_PACK_SIZE};
use sophon::format::prune::PruneRecord;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Config::decode(data) {
        c.chunker.validate().expect("decode validated the chunker");
        assert!((MIN_PACK_SIZE..=MAX_PACK_SIZE).contains(&c.pack_size), "decode bounded pack_size");
        let enc = c.encode().expect("an accepted config encodes");
        let back = Config::decode(&enc).expect("re-encoded config must decode");
        assert_eq!(back, c);
    }
    if let Ok(l) = Lock::decode(data, "fuzz") {
        let enc = l.encode().expect("an accepted lock encodes");
        let back = Lock::decode(&enc, "fuzz re-encoded").expect("re-encoded lock must decode");
        assert_eq!(back, l);
    }
    if let Ok(r) = PruneRecord::decode(data, "fuzz") {
        let enc = r.encode().expect("an accepted prune record encodes");
        let back = PruneRecord::decode(&enc, "fuzz re-encoded").expect("re-encoded prune record must decode");
        assert_eq!(back, r);
    }
    if let Ok(w) = std::str::from_utf8(data).map(str::parse::<sophon::retention::Within>) {
        if let Ok(w) = w {
            let again: sophon::retention::Within = w.to_string().parse().expect("a printed duration parses");
            assert_eq!(again.to_string(), w.to_string());
        }
    }
});
