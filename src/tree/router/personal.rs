//! Personal data in free text: verification codes, mainland mobile numbers and ID numbers, found so that they are warned about and kept out of logs.

/// How many digits a verification code has.
pub(crate) const CODE_DIGITS: usize = 6;

/// Whether a text seems to hold personal data: a 6-digit code, a mainland
/// mobile number, or an ID number. Spaces and dashes inside a number are
/// read through, and full-width digits count.
pub fn has_personal_data(text: &str) -> bool {
    personal_data(text).next().is_some()
}

/// Where a text seems to hold personal data (as `has_personal_data` reads
/// it): the byte range of each number, its spaces, dashes and an ID's
/// check letter included, in order.
pub fn personal_data(text: &str) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    // Each character as the detector reads it, with its byte offset.
    let chars: Vec<(usize, char)> = text
        .char_indices()
        .map(|(at, c)| {
            let c = match c {
                '\u{FF10}'..='\u{FF19}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                '\u{FF38}' | '\u{FF58}' => 'x',
                c => c,
            };
            (at, c)
        })
        .collect();
    let end_of =
        move |chars: &[(usize, char)], j: usize| chars.get(j).map_or(text.len(), |&(at, _)| at);
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < chars.len() {
            if !chars[i].1.is_ascii_digit() {
                i += 1;
                continue;
            }
            let mut digits = String::new();
            let mut j = i;
            while j < chars.len() {
                let c = chars[j].1;
                if c.is_ascii_digit() {
                    digits.push(c);
                    j += 1;
                } else if matches!(c, ' ' | '-')
                    && chars.get(j + 1).is_some_and(|n| n.1.is_ascii_digit())
                    && !digits.is_empty()
                {
                    j += 1;
                } else {
                    break;
                }
            }
            let id_check_letter = chars.get(j).is_some_and(|c| matches!(c.1, 'x' | 'X'));
            let bytes = digits.as_bytes();
            let personal = match digits.len() {
                CODE_DIGITS => true,
                11 => bytes[0] == b'1' && (b'3'..=b'9').contains(&bytes[1]),
                15 | 18 => true,
                17 => id_check_letter,
                _ => false,
            };
            let start = chars[i].0;
            let stop = end_of(&chars, if id_check_letter { j + 1 } else { j });
            i = j.max(i + 1);
            if personal {
                return Some(start..stop);
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_phone_numbers_and_ids_are_personal_data() {
        for text in [
            "验证码是123456",
            "code 654321 didn't work",
            "手机13812345678收不到",
            "手机 138 1234 5678",
            "138-1234-5678",
            "身份证11010519491231002X",
            "证件110105194912310021",
            "旧身份证 110105491231002",
            "验证码１２３４５６",
        ] {
            assert!(has_personal_data(text), "{text}");
        }
    }

    #[test]
    fn ordinary_numbers_are_not_personal_data() {
        for text in [
            "超过24小时了",
            "输错5次",
            "2024年备案",
            "订单20241129",
            "last 6 digits",
            "12381发的短信",
            "1234567",
            "电话4000955988",
        ] {
            assert!(!has_personal_data(text), "{text}");
        }
    }
}
