//! The demo backend's publish check for `moderated:` rooms: a message containing a word of a small
//! list is refused (the hub then publishes nothing and answers the sender with our error code).

/// Words refused in moderated rooms, lowercase. A demo list: a real backend would call its own
/// moderation service here.
pub const BANNED_WORDS: &[&str] = &["spam", "scam", "casino"];

/// The code the hub passes on to the sender's error frame.
pub const REFUSED_CODE: &str = "refused";

/// The first banned word `content` contains as a whole word, ignoring case.
pub fn banned_word(content: &str) -> Option<&'static str> {
    content
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .find_map(|w| {
            let w = w.to_lowercase();
            BANNED_WORDS.iter().copied().find(|b| *b == w)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_of_the_list_are_found_whatever_their_case() {
        assert_eq!(banned_word("buy SPAM now"), Some("spam"));
        assert_eq!(banned_word("a scam!"), Some("scam"));
        assert_eq!(banned_word("casino,"), Some("casino"));
        assert_eq!(banned_word("hello there"), None);
        // Part of another word is not the word.
        assert_eq!(banned_word("spammer scampi"), None);
        assert_eq!(banned_word(""), None);
    }
}
