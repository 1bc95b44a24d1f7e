//! The languages the dialogue speaks, and texts that carry one version per language.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A language of the dialogue. Chinese is the default: most people filing
/// for an ICP record read it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// Picks the language for a Telegram `language_code` such as `zh-hans`
    /// or `en-US`; anything not Chinese falls back to `default`.
    pub fn from_language_code(code: Option<&str>, default: Lang) -> Lang {
        match code {
            Some(c) if c.to_ascii_lowercase().starts_with("zh") => Lang::Zh,
            Some(c) if c.to_ascii_lowercase().starts_with("en") => Lang::En,
            _ => default,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language {0:?} (expected zh or en)")]
pub struct UnknownLang(pub String);

impl FromStr for Lang {
    type Err = UnknownLang;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zh" | "cn" | "中文" => Ok(Lang::Zh),
            "en" | "english" => Ok(Lang::En),
            _ => Err(UnknownLang(s.to_string())),
        }
    }
}

/// One text in every language; the loader guarantees both are non-empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Localized {
    pub zh: String,
    pub en: String,
}

impl Localized {
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_language_codes_pick_chinese_whatever_the_default() {
        assert_eq!(
            Lang::from_language_code(Some("zh-hans"), Lang::En),
            Lang::Zh
        );
        assert_eq!(Lang::from_language_code(Some("ZH"), Lang::En), Lang::Zh);
    }

    #[test]
    fn other_or_missing_codes_fall_back_to_the_default() {
        assert_eq!(Lang::from_language_code(Some("de"), Lang::Zh), Lang::Zh);
        assert_eq!(Lang::from_language_code(None, Lang::En), Lang::En);
        assert_eq!(Lang::from_language_code(Some("en-US"), Lang::Zh), Lang::En);
    }

    #[test]
    fn parses_codes_and_rejects_others() {
        assert_eq!(" EN ".parse::<Lang>(), Ok(Lang::En));
        assert_eq!("zh".parse::<Lang>(), Ok(Lang::Zh));
        assert!("fr".parse::<Lang>().is_err());
    }
}
