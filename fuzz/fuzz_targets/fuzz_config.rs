//! `fuzz_config`: arbitrary bytes as an Admin API body (every object kind), as an APISIX
//! standalone file and as a Kong declarative file.
//!
//! Guards against panics in validation of configuration a client or an operator sends: a
//! panic there would take the control plane down with a request, or stop the gateway at start.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::admin::kind::{validate, Kind};
use portcullis::plugins::Registry;

const KINDS: [Kind; 9] = [
    Kind::Routes,
    Kind::Services,
    Kind::Upstreams,
    Kind::Consumers,
    Kind::Credentials,
    Kind::GlobalRules,
    Kind::PluginConfigs,
    Kind::Secrets,
    Kind::Ssls,
];

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        for kind in KINDS {
            let _ = validate(kind, &v, "fuzz", &Registry);
        }
        let _ = portcullis::kong::translate(&v);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = portcullis::model::parse_standalone(text, false, &Registry);
        if let Ok(doc) = portcullis::model::parse_text(text, false) {
            let t = portcullis::kong::translate(&doc);
            let _ = (t.objects.len(), t.skipped.len());
        }
    }
});
