//! How evenly something spread: Pearson's chi-square test of counts against a
//! uniform spread, with its p-value (the chance of a spread at least this uneven if
//! every bucket were equally likely).

/// A chi-square test of `counts` against equal expected counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChiSquare {
    pub statistic: f64,
    /// Degrees of freedom: buckets - 1.
    pub df: usize,
    pub p_value: f64,
}

/// Test `counts` (one per bucket, at least two buckets) against uniform.
pub fn chi_square_uniform(counts: &[u64]) -> ChiSquare {
    let total: u64 = counts.iter().sum();
    let k = counts.len();
    if k < 2 || total == 0 {
        return ChiSquare {
            statistic: 0.0,
            df: k.saturating_sub(1),
            p_value: 1.0,
        };
    }
    let expected = total as f64 / k as f64;
    let statistic = counts
        .iter()
        .map(|c| (*c as f64 - expected).powi(2) / expected)
        .sum();
    let df = k - 1;
    ChiSquare {
        statistic,
        df,
        p_value: upper_gamma_q(df as f64 / 2.0, statistic / 2.0),
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1-x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = C[1..]
        .iter()
        .enumerate()
        .fold(C[0], |acc, (i, c)| acc + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The regularized upper incomplete gamma function Q(a, x): a series below a + 1,
/// a continued fraction (modified Lentz) above.
fn upper_gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        let (mut term, mut sum, mut n) = (1.0 / a, 1.0 / a, a);
        for _ in 0..500 {
            n += 1.0;
            term *= x / n;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (1.0 - sum * front).clamp(0.0, 1.0)
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..500 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (front * h).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_values_match_the_tables() {
        // df 2: Q = exp(-x/2) exactly.
        let t = chi_square_uniform(&[110, 100, 90]);
        assert!((t.statistic - 2.0).abs() < 1e-12);
        assert!((t.p_value - (-1.0f64).exp()).abs() < 1e-9, "{t:?}");
        // df 1, x = 3.841: p = 0.05; df 4, x = 13.277: p = 0.01.
        assert!((upper_gamma_q(0.5, 3.841 / 2.0) - 0.05).abs() < 1e-3);
        assert!((upper_gamma_q(2.0, 13.277 / 2.0) - 0.01).abs() < 1e-4);
        assert_eq!(chi_square_uniform(&[5, 5, 5]).p_value, 1.0);
        assert!(chi_square_uniform(&[300, 0, 0]).p_value < 1e-50);
    }
}
