//! Checks a match must pass besides its regex.

/// The Luhn checksum over the digits of `value` (separators ignored), 13 to 19 digits.
pub(crate) fn luhn(value: &[u8]) -> bool {
    let digits: Vec<u32> = value.iter().filter(|b| b.is_ascii_digit()).map(|b| u32::from(b - b'0')).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d })
        .sum();
    sum.is_multiple_of(10)
}

/// The ISO 13616 IBAN checksum (mod 97 = 1), spaces ignored.
pub(crate) fn iban(value: &[u8]) -> bool {
    let compact: Vec<u8> =
        value.iter().filter(|b| !b.is_ascii_whitespace()).map(u8::to_ascii_uppercase).collect();
    if !(15..=34).contains(&compact.len()) || !compact.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder: u32 = 0;
    for &b in tail.iter().chain(head) {
        let value = if b.is_ascii_digit() { u32::from(b - b'0') } else { u32::from(b - b'A') + 10 };
        remainder = if value >= 10 { (remainder * 100 + value) % 97 } else { (remainder * 10 + value) % 97 };
    }
    remainder == 1
}

/// Shannon entropy of `value`, in bits per byte: log2(n) - Σ c·log2(c) / n over the count c
/// of each distinct byte. It runs on every candidate secret, so for a short value each distinct
/// byte is visited once (not all 256) and c·log2(c) comes from a table.
pub(crate) fn entropy(value: &[u8]) -> f32 {
    if value.is_empty() {
        return 0.0;
    }
    static C_LOG2_C: std::sync::LazyLock<[f32; 256]> = std::sync::LazyLock::new(|| {
        std::array::from_fn(|c| if c == 0 { 0.0 } else { c as f32 * (c as f32).log2() })
    });
    let table = &*C_LOG2_C;
    let mut counts = [0u32; 256];
    for &b in value {
        counts[usize::from(b)] += 1;
    }
    let mut sum = 0.0;
    if value.len() < table.len() {
        // Each byte's count is taken once (the table says 0 for a byte seen already): no
        // branch on it, which a random value would mispredict half the time.
        for &b in value {
            sum += table[std::mem::take(&mut counts[usize::from(b)]) as usize];
        }
    } else {
        for c in counts.into_iter().filter(|&c| c > 0) {
            sum += c as f32 * (c as f32).log2();
        }
    }
    let len = value.len() as f32;
    len.log2() - sum / len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_real_card_numbers_only() {
        assert!(luhn(b"4111 1111 1111 1111"));
        assert!(luhn(b"5500-0000-0000-0004"));
        assert!(luhn(b"378282246310005"));
        assert!(!luhn(b"4111 1111 1111 1112"));
        assert!(!luhn(b"1234"));
    }

    #[test]
    fn iban_checks_mod_97() {
        assert!(iban(b"DE89 3704 0044 0532 0130 00"));
        assert!(iban(b"GB82WEST12345698765432"));
        assert!(!iban(b"DE89 3704 0044 0532 0130 01"));
        assert!(!iban(b"DE89"));
    }

    /// The textbook sum, -Σ p·log2(p) over the 256 byte values.
    fn entropy_by_definition(value: &[u8]) -> f32 {
        (0..=255u8)
            .map(|b| value.iter().filter(|&&v| v == b).count())
            .filter(|&c| c > 0)
            .map(|c| {
                let p = c as f32 / value.len() as f32;
                -p * p.log2()
            })
            .sum()
    }

    proptest::proptest! {
        #[test]
        fn entropy_agrees_with_its_definition(value in proptest::collection::vec(proptest::num::u8::ANY, 1..600)) {
            proptest::prop_assert!((entropy(&value) - entropy_by_definition(&value)).abs() < 1e-3);
        }
    }

    #[test]
    fn entropy_of_repeats_is_low() {
        assert!(entropy(b"aaaaaaaa") < 0.01);
        assert!(entropy(b"q8Zk3xP0vL7m") > 3.0);
    }
}
