//! STUB
pub struct TsaBenchReport {
    pub tokens_per_second: f64,
    pub raw_signatures_per_second: f64,
    pub ratio: f64,
}
impl std::fmt::Display for TsaBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.ratio)
    }
}
pub fn run(_t: usize, _th: usize) -> anyhow::Result<TsaBenchReport> {
    todo!()
}
