use sundown::{Cancelled, cancel_safe, graceful_main};

#[cancel_safe]
async fn longest<'a>(a: &'a str, b: &'a str) -> Result<&'a str, Cancelled> {
    Ok(if a.len() >= b.len() { a } else { b })
}

#[cancel_safe]
async fn first_word(text: &str) -> Result<&str, Cancelled> {
    Ok(text.split(' ').next().unwrap_or(text))
}

struct Parser<'src> {
    source: &'src str,
}

impl<'src> Parser<'src> {
    #[cancel_safe]
    async fn rest(&self, from: usize) -> Result<&'src str, Cancelled> {
        Ok(&self.source[from..])
    }
}

#[graceful_main]
async fn main() -> Result<(), Cancelled> {
    assert_eq!(longest("abc", "de").await?, "abc");
    assert_eq!(first_word("hello world").await?, "hello");
    let parser = Parser { source: "key=value" };
    assert_eq!(parser.rest(4).await?, "value");
    Ok(())
}
