//! A crafted OTLP batch is refused without the memory its conversion would take: the process's
//! peak resident size is measured around the conversion (Linux: `/proc/self/clear_refs`).
//! The one test of this binary, so that nothing else allocates meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ward_logs::push::{Bounds, PushError, otlp};

/// The peak resident size since the last reset, in bytes.
fn peak() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

fn reset_peak() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    peak()
}

/// One resource with an attribute of `attribute_bytes`, and `records` empty records.
fn batch(attribute_bytes: usize, records: usize) -> Vec<u8> {
    let mut body = format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"k","value":{{"stringValue":"{}"}}}}]}},"scopeLogs":[{{"logRecords":["#,
        "x".repeat(attribute_bytes)
    )
    .into_bytes();
    body.extend_from_slice(&b"{},".repeat(records));
    body.pop();
    body.extend_from_slice(b"]}]}]}");
    body
}

#[test]
fn a_batch_that_would_convert_to_gigabytes_is_refused_in_bounded_memory() {
    // 64 KiB copied into 20,000 lines would be 1.3 GB.
    let crafted = batch(64 << 10, 20_000);
    let before = reset_peak();
    let refused = otlp(&crafted, Bounds::default()).err();
    let grown = peak().saturating_sub(before);
    assert_eq!(refused, Some(PushError::TooLarge { max: 32 << 20 }));
    assert!(grown < 128 << 20, "converting took {} MiB", grown >> 20);

    // The issue's: 8 MiB, a large attribute and a million empty records.
    let crafted = batch(5 << 20, 1_000_000);
    assert!(crafted.len() <= 8 << 20);
    let before = reset_peak();
    let refused = otlp(&crafted, Bounds::default()).err();
    let grown = peak().saturating_sub(before);
    assert_eq!(refused, Some(PushError::TooManyRecords { max: 100_000 }));
    assert!(grown < 128 << 20, "converting took {} MiB", grown >> 20);
}
