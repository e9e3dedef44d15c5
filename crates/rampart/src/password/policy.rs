//! The password policy for new passwords (register, change, reset): Flask-Security's
//! `password_required` and `password_length_validator`, with its exact messages.

use unicode_normalization::UnicodeNormalization;

/// Length limits for new passwords, counted in Unicode characters after NFKD
/// (as Flask-Security's `len(normalize(password))`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// `SECURITY_PASSWORD_LENGTH_MIN` (default 8).
    pub min_length: usize,
    /// Longest accepted password (Flask-Security's fixed 128).
    pub max_length: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 128,
        }
    }
}

/// Why a new password is refused; `Display` is Flask-Security's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyViolation {
    /// Empty or only whitespace (`PASSWORD_NOT_PROVIDED`).
    #[error("Password not provided")]
    NotProvided,
    /// Fewer than `min` characters (`PASSWORD_INVALID_LENGTH`).
    #[error("Password must be at least {min} characters")]
    TooShort {
        /// The configured minimum.
        min: usize,
    },
    /// More than `max` characters. Flask-Security reports this with the same
    /// `PASSWORD_INVALID_LENGTH` message as a too short password.
    #[error("Password must be at least {min} characters")]
    TooLong {
        /// The configured minimum (the only number in the message).
        min: usize,
        /// The configured maximum.
        max: usize,
    },
}

impl PasswordPolicy {
    /// Checks a new password as typed (it is NFKD-normalised before counting).
    ///
    /// # Errors
    /// The first [`PolicyViolation`] found.
    pub fn check(&self, password: &str) -> Result<(), PolicyViolation> {
        // WTForms' DataRequired: empty or whitespace-only data is "not provided".
        if password.trim().is_empty() {
            return Err(PolicyViolation::NotProvided);
        }
        let length = password.nfkd().count();
        if length < self.min_length {
            return Err(PolicyViolation::TooShort {
                min: self.min_length,
            });
        }
        if length > self.max_length {
            return Err(PolicyViolation::TooLong {
                min: self.min_length,
                max: self.max_length,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_or_blank_passwords_are_not_provided() {
        let policy = PasswordPolicy::default();
        for blank in ["", " ", "\t\n", "\u{3000}"] {
            let err = policy.check(blank).expect_err("refused");
            assert_eq!(err, PolicyViolation::NotProvided);
            assert_eq!(err.to_string(), "Password not provided");
        }
    }

    #[test]
    fn short_passwords_get_flask_security_message() {
        let err = PasswordPolicy::default()
            .check("1234567")
            .expect_err("refused");
        assert_eq!(err.to_string(), "Password must be at least 8 characters");
        let policy = PasswordPolicy {
            min_length: 12,
            max_length: 128,
        };
        let err = policy.check("12345678901").expect_err("refused");
        assert_eq!(err.to_string(), "Password must be at least 12 characters");
    }

    #[test]
    fn long_passwords_get_the_same_message_as_flask_security() {
        let policy = PasswordPolicy::default();
        assert!(policy.check(&"a".repeat(128)).is_ok());
        let err = policy.check(&"a".repeat(129)).expect_err("refused");
        assert_eq!(err, PolicyViolation::TooLong { min: 8, max: 128 });
        assert_eq!(err.to_string(), "Password must be at least 8 characters");
    }

    #[test]
    fn length_is_counted_in_characters_after_nfkd() {
        let policy = PasswordPolicy::default();
        // 8 characters, 16 bytes: accepted.
        assert!(policy.check("éééééééé").is_ok());
        // 4 ligatures "ﬁ" are 8 characters after NFKD.
        assert!(policy.check("\u{fb01}\u{fb01}\u{fb01}\u{fb01}").is_ok());
        // 7 composed "é" become 14 characters after NFKD.
        assert!(policy.check("ééééééé").is_ok());
        assert!(policy.check("abcdefg").is_err());
    }
}
