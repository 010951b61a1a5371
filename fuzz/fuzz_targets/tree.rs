//! Trees: `Tree::decode` on hostile JSON, and decode(encode(x)) == x for every tree it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sophon::format::tree::{Node, NodeKind, Tree};

fuzz_target!(|data: &[u8]| {
    if let Ok(tree) = Tree::decode(data, "fuzz") {
        for node in &tree.nodes {
            // decode validated these; what restore then calls must agree.
            let name = node.name_bytes().expect("decode accepted the name");
            assert!(Node::is_safe_name(&name));
            if node.kind == NodeKind::Symlink {
                node.target_bytes().expect("decode accepted the symlink target");
            }
            if node.kind == NodeKind::Dir {
                assert!(node.subtree.is_some());
            }
        }
        let enc = tree.encode().expect("an accepted tree encodes");
        let back = Tree::decode(&enc, "fuzz re-encoded").expect("re-encoded tree must decode");
        assert_eq!(back, tree);
        // Canonical: encoding is deterministic, so the same directory keeps the same blob id.
        assert_eq!(back.encode().unwrap(), enc);
    }
});
