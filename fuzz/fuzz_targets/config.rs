//! The plaintext `config` and locks: `Config::decode` and `Lock::decode` on hostile JSON, each with
//! a round trip when it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sophon::format::config::{Config, Lock};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Config::decode(data) {
        c.chunker.validate().expect("decode validated the chunker");
        let enc = c.encode().expect("an accepted config encodes");
        let back = Config::decode(&enc).expect("re-encoded config must decode");
        assert_eq!(back, c);
    }
    if let Ok(l) = Lock::decode(data, "fuzz") {
        let enc = l.encode().expect("an accepted lock encodes");
        let back = Lock::decode(&enc, "fuzz re-encoded").expect("re-encoded lock must decode");
        assert_eq!(back, l);
    }
});
