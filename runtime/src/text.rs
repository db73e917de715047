//! Text from users (task names, trigger reasons) as sundown prints it.

use std::fmt;

/// A name as sundown prints it: control characters escaped (a name cannot forge a
/// line of the report) and at most [`NAME_CHARS`] characters.
pub(crate) struct Shown<'a>(pub(crate) &'a str);

/// The longest name printed whole.
pub(crate) const NAME_CHARS: usize = 80;

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for (i, c) in self.0.chars().enumerate() {
            if i == NAME_CHARS {
                return f.write_char('…');
            }
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}
