//! Incremental UTF-8 validation of text messages (RFC 6455 §8.1), so a
//! text message that goes wrong is refused at the first byte that makes it
//! invalid, whatever the frames and reads it arrives in, and not only once
//! the whole message is buffered.
//!
//! The standard library's validator does the work on each piece; at most
//! three bytes of a character cut by a piece boundary are carried to the
//! next piece. A verdict depends only on the bytes seen, never on where
//! they were cut.

/// The state between pieces of one text message.
#[derive(Debug, Default, Clone)]
pub struct Validator {
    /// The start of a character the last piece ended inside.
    carry: [u8; 4],
    carried: u8,
}

/// The bytes seen are not the start of any UTF-8 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

impl Validator {
    /// A validator at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Check the next piece of the message.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Invalid> {
        if self.carried > 0 {
            let had = self.carried as usize;
            let take = (4 - had).min(bytes.len());
            let mut tmp = [0u8; 4];
            tmp[..had].copy_from_slice(&self.carry[..had]);
            tmp[had..had + take].copy_from_slice(&bytes[..take]);
            match std::str::from_utf8(&tmp[..had + take]) {
                Ok(_) => {
                    self.carried = 0;
                    bytes = &bytes[take..];
                }
                Err(e) if e.valid_up_to() > 0 => {
                    // The carried character is complete; what follows it
                    // is checked with the rest of the piece.
                    self.carried = 0;
                    bytes = &bytes[e.valid_up_to() - had..];
                }
                Err(e) if e.error_len().is_none() => {
                    // Still a valid start of one character: the piece was
                    // too short to finish it.
                    self.carry[..had + take].copy_from_slice(&tmp[..had + take]);
                    self.carried = (had + take) as u8;
                    return Ok(());
                }
                Err(_) => return Err(Invalid),
            }
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &bytes[e.valid_up_to()..];
                self.carry[..tail.len()].copy_from_slice(tail);
                self.carried = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(Invalid),
        }
    }

    /// The message ended: valid only if no character is left unfinished.
    pub fn finish(&self) -> Result<(), Invalid> {
        if self.carried == 0 {
            Ok(())
        } else {
            Err(Invalid)
        }
    }
}

/// True when `bytes` is UTF-8 text.
pub fn is_valid(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `bytes` cut at every pair of offsets; the verdict must be the
    /// whole-input one.
    fn check_all_splits(bytes: &[u8]) {
        let whole = is_valid(bytes);
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let mut v = Validator::new();
                let ok = v.feed(&bytes[..i]).is_ok()
                    && v.feed(&bytes[i..j]).is_ok()
                    && v.feed(&bytes[j..]).is_ok()
                    && v.finish().is_ok();
                assert_eq!(ok, whole, "{bytes:x?} cut at {i}, {j}");
            }
        }
    }

    #[test]
    fn verdicts_do_not_depend_on_cuts() {
        for text in [
            "".as_bytes(),
            "plain ascii".as_bytes(),
            "caf\u{e9} \u{20ac} \u{1f600} \u{10ffff}".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
            b"\xed\xa0\x80",         // a surrogate
            b"\xf4\x90\x80\x80",     // above U+10FFFF
            b"\xe0\x80\xaf",         // overlong
            b"\xc0\xaf",             // overlong
            b"ab\xf0\x9f\x98",       // cut at the end
            b"\xf0\x9f\x98\x80\xff", // a stray byte after a good character
            b"\x80",
            b"a\xc3\xa9\xe2\x82",
        ] {
            check_all_splits(text);
        }
    }

    #[test]
    fn refuses_at_the_first_bad_byte() {
        let mut v = Validator::new();
        assert_eq!(v.feed(b"ok \xe0"), Ok(()), "a valid start of a character");
        assert_eq!(v.feed(b"\x80"), Err(Invalid), "E0 80 can never be valid");
        let mut v = Validator::new();
        assert_eq!(v.feed(b"\xf0\x9f"), Ok(()));
        assert_eq!(v.feed(b"\x98"), Ok(()));
        assert_eq!(v.finish(), Err(Invalid));
        assert_eq!(v.feed(b"\x80 and more"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }
}
