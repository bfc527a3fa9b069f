//! Tests of the composer as a whole: amounts, regimes, prescription, warnings, errors and
//! mentions, through `ComposeRequest::parse` and `write_letter` as the API uses them.

use serde_json::{Value, json};
use time::Date;
use time::macros::date;

use super::amounts::{RECOVERY_INDEMNITY_CENTS, RateBasis};
use super::mentions::{self, L111_8_PARAGRAPH_2, L111_8_PARAGRAPH_3};
use super::*;
use crate::core::french;

fn b2b(invoices: Value) -> Value {
    json!({
        "kind": "mise_en_demeure",
        "creditor": {"name": "Atelier Durand SARL", "address": "12 rue des Lilas\n69003 Lyon", "siren": "732829320"},
        "debtor": {"name": "Boulangerie Martin", "address": ["3 place du Marché", "38000 Grenoble"], "kind": "professional"},
        "invoices": invoices,
        "payment": {"iban": "FR76 3000 6000 0112 3456 7890 189", "link": "https://pay.example.fr/i/42"}
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn consumer(v: Value) -> Value {
    let mut v = v;
    v["debtor"]["kind"] = json!("consumer");
    v["debtor"]["name"] = json!("Jeanne Petit");
    v
}

fn parse(v: &Value, letter_date: Date) -> Result<Composition, Vec<FieldError>> {
    ComposeRequest::parse(v, letter_date, &RatesTable::embedded())
}

fn ok(v: &Value, letter_date: Date) -> Composition {
    match parse(v, letter_date) {
        Ok(c) => c,
        Err(e) => panic!("expected a composition, got {e:?}"),
    }
}

fn invoice(number: &str, due: &str, amount: i64) -> Value {
    json!({"number": number, "issue_date": due, "due_date": due, "amount_cents": amount})
}

#[test]
fn b2b_interest_across_a_half_year_boundary_uses_each_half_years_ecb_rate() {
    // Due 31 May 2025: interest from 1 June. 2025-H1: ECB 3,15 % + 10 = 13,15 % for 30 days
    // (1–30 June); 2025-H2: ECB 2,15 % + 10 = 12,15 % for 32 days (1 July – 1 August).
    let c = ok(
        &b2b(json!([invoice("F-2025-101", "2025-05-31", 1_000_000)])),
        date!(2025 - 08 - 01),
    );
    let inv = &c.breakdown.invoices[0];
    assert_eq!(c.breakdown.regime, InterestRegime::Commercial);
    let periods: Vec<(Date, Date, i64, i64)> = inv
        .periods
        .iter()
        .map(|p| (p.from, p.to, p.days, p.rate_bp))
        .collect();
    assert_eq!(
        periods,
        [
            (date!(2025 - 06 - 01), date!(2025 - 06 - 30), 30, 1315),
            (date!(2025 - 07 - 01), date!(2025 - 08 - 01), 32, 1215)
        ]
    );
    // 1 000 000 × (1315 × 30 + 1215 × 32) / (10 000 × 365) = 21 460,27… → 21 460 cents,
    // rounded once; the first period alone is 10 808,2… → 10 808, the second the rest.
    assert_eq!(inv.interest_cents, 21_460);
    assert_eq!(
        inv.periods
            .iter()
            .map(|p| p.interest_cents)
            .collect::<Vec<_>>(),
        [10_808, 10_652]
    );
    assert!(
        inv.periods
            .iter()
            .all(|p| p.basis == RateBasis::EcbPlusTenPoints)
    );
    assert_eq!(inv.indemnity_cents, RECOVERY_INDEMNITY_CENTS);
    assert_eq!(c.breakdown.totals.total_cents, 1_000_000 + 21_460 + 4_000);
    assert_eq!(c.breakdown.rates_used.len(), 2);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn a_contract_rate_below_three_times_the_legal_rate_is_raised_to_that_floor() {
    // 2026-H1 legal rate (autres cas) 2,62 % → floor 7,86 %. 1 Feb – 2 Mar 2026 = 30 days.
    let low = with(
        b2b(json!([invoice("F-7", "2026-01-31", 100_000)])),
        "contract_rate_percent",
        json!(5),
    );
    let c = ok(&low, date!(2026 - 03 - 02));
    let p = &c.breakdown.invoices[0].periods[0];
    assert_eq!(
        (p.days, p.rate_bp, p.basis),
        (30, 786, RateBasis::ThreeTimesLegalFloor)
    );
    assert_eq!(p.reference_bp, Some(262));
    // 100 000 × 786 × 30 / 3 650 000 = 646,03… → 646.
    assert_eq!(c.breakdown.invoices[0].interest_cents, 646);
    let letter = write_letter(&c, None).expect("letter");
    assert!(
        letter
            .plain_text()
            .contains("trois fois le taux de l'intérêt légal")
    );

    let high = with(
        b2b(json!([invoice("F-7", "2026-01-31", 100_000)])),
        "contract_rate_percent",
        json!(15),
    );
    let c = ok(&high, date!(2026 - 03 - 02));
    let p = &c.breakdown.invoices[0].periods[0];
    assert_eq!((p.rate_bp, p.basis), (1500, RateBasis::Contract));
    // 100 000 × 1500 × 30 / 3 650 000 = 1 232,87… → 1 233.
    assert_eq!(c.breakdown.invoices[0].interest_cents, 1_233);
}

#[test]
fn a_consumer_owes_no_interest_before_the_first_mise_en_demeure() {
    let invoices = json!([invoice("C-1", "2026-06-30", 200_000)]);
    let relance = consumer(with(b2b(invoices.clone()), "kind", json!("relance")));
    let c = ok(&relance, date!(2026 - 08 - 01));
    assert_eq!(c.breakdown.regime, InterestRegime::Civil);
    assert_eq!(c.breakdown.totals.interest_cents, 0);
    assert!(c.breakdown.invoices[0].periods.is_empty());

    let first = consumer(b2b(invoices));
    let c = ok(&first, date!(2026 - 08 - 01));
    assert_eq!(c.breakdown.totals.interest_cents, 0);
    assert_eq!(c.breakdown.formal_notice_date, Some(date!(2026 - 08 - 01)));
    let text = write_letter(&c, None).expect("letter").plain_text();
    assert!(text.contains("courent à compter de la présente mise en demeure"));
}

#[test]
fn a_later_letter_to_a_consumer_counts_legal_interest_from_the_first_mise_en_demeure() {
    let later = with(
        consumer(b2b(json!([invoice("C-1", "2026-06-30", 200_000)]))),
        "first_letter",
        json!({"reference": "MED-2026-0042", "date": "2026-09-01", "kind": "mise_en_demeure"}),
    );
    let c = ok(&later, date!(2026 - 10 - 01));
    let inv = &c.breakdown.invoices[0];
    assert_eq!(inv.interest_from, Some(date!(2026 - 09 - 02)));
    // 2 Sep – 1 Oct 2026 = 30 days at the legal rate; 2026-H2 is not in the table, so the
    // 2026-H1 rate (2,62 %) stands in, with a warning: 200 000 × 262 × 30 / 3 650 000 = 430,7.
    assert_eq!(inv.periods.len(), 1);
    assert_eq!(inv.periods[0].rate_bp, 262);
    assert_eq!(inv.periods[0].basis, RateBasis::Legal);
    assert_eq!(inv.interest_cents, 431);
    assert_eq!(inv.indemnity_cents, 0);
    let missing: Vec<&Warning> = c
        .warnings
        .iter()
        .filter(|w| w.code == "rate_missing")
        .collect();
    assert_eq!(missing.len(), 1);
    assert!(missing[0].message.contains("2026-H2") && missing[0].on_letter);

    let letter = write_letter(&c, None).expect("letter");
    let text = letter.plain_text();
    assert!(text.contains("second semestre 2026"), "{text}");
    assert!(text.contains("MED-2026-0042") && text.contains("1er septembre 2026"));
    assert!(
        letter
            .blocks
            .iter()
            .any(|b| matches!(b, Block::Notice { .. }))
    );

    // Without knowing that the first letter was a mise en demeure, nothing is assumed.
    let unknown = with(
        later.clone(),
        "first_letter",
        json!({"reference": "MED-2026-0042", "date": "2026-09-01"}),
    );
    let c = ok(&unknown, date!(2026 - 10 - 01));
    assert_eq!(c.breakdown.totals.interest_cents, 0);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.code == "consumer_interest_not_claimed")
    );
}

#[test]
fn a_private_person_creditor_gets_the_private_legal_rate_and_no_indemnity() {
    let mut v = with(
        b2b(json!([invoice("P-1", "2026-01-31", 100_000)])),
        "first_letter",
        json!({"reference": "L-1", "date": "2026-02-01", "kind": "mise_en_demeure"}),
    );
    v["creditor"] = json!({"name": "Paul Bernard", "address": "1 rue Haute\n75001 Paris", "kind": "private_person"});
    let c = ok(&v, date!(2026 - 03 - 03));
    assert_eq!(c.breakdown.regime, InterestRegime::Civil);
    let p = &c.breakdown.invoices[0].periods[0];
    // 2026-H1 legal rate for a private creditor: 6,67 %; 2 Feb – 3 Mar = 30 days.
    assert_eq!((p.rate_bp, p.days), (667, 30));
    assert_eq!(c.breakdown.totals.indemnity_cents, 0);
}

#[test]
fn partial_payments_leave_interest_on_the_rest_only() {
    let v = b2b(json!([
        {"number": "F-1", "issue_date": "2026-01-01", "due_date": "2026-01-31", "amount_cents": 150_000, "paid_cents": 50_000}
    ]));
    let c = ok(&v, date!(2026 - 03 - 02));
    let inv = &c.breakdown.invoices[0];
    assert_eq!(inv.principal_cents, 100_000);
    // 30 days at 12,15 % on 1 000,00 €: 100 000 × 1215 × 30 / 3 650 000 = 998,6 → 999.
    assert_eq!(inv.interest_cents, 999);
    assert_eq!(inv.total_cents, 100_000 + 999 + 4_000);
    let text = write_letter(&c, None).expect("letter").plain_text();
    assert!(text.contains("500,00\u{A0}€") && text.contains("1\u{202F}500,00\u{A0}€"));
}

#[test]
fn prescription_is_five_years_between_professionals_with_a_warning_then_a_refusal() {
    let v = b2b(json!([invoice("OLD-1", "2021-11-23", 100_000)]));
    let last_day = ok(&v, date!(2026 - 11 - 23));
    assert!(
        last_day
            .warnings
            .iter()
            .any(|w| w.code == "prescription_near" && !w.on_letter)
    );
    let day_before = ok(&v, date!(2026 - 11 - 22));
    assert_eq!(day_before.prescription[0].days_left, 1);

    let errors = parse(&v, date!(2026 - 11 - 24)).expect_err("time-barred");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "compose.invoices[0].due_date");
    assert!(errors[0].message.contains("time-barred"));

    let forced = with(v, "override_prescription", json!(true));
    let c = ok(&forced, date!(2026 - 11 - 24));
    assert_eq!(c.overrides.len(), 1);
    assert_eq!(c.overrides[0].limit, date!(2026 - 11 - 23));
    assert!(
        c.warnings
            .iter()
            .any(|w| w.code == "prescription_overridden")
    );
    let letter = write_letter(&c, None).expect("letter");
    assert_eq!(letter.summary(&c).prescription_overrides, c.overrides);
}

#[test]
fn prescription_is_two_years_against_a_consumer() {
    let v = consumer(b2b(json!([invoice("C-9", "2024-11-23", 100_000)])));
    assert!(parse(&v, date!(2026 - 11 - 23)).is_ok());
    assert!(parse(&v, date!(2026 - 11 - 24)).is_err());
    let far = ok(&v, date!(2026 - 08 - 24));
    assert!(!far.warnings.iter().any(|w| w.code == "prescription_near"));
    let near = ok(&v, date!(2026 - 08 - 25));
    assert!(near.warnings.iter().any(|w| w.code == "prescription_near"));
}

#[test]
fn interest_needing_a_rate_before_the_table_is_refused_not_guessed() {
    let v = b2b(json!([invoice("F-1", "2014-11-30", 100_000)]));
    let errors = parse(&v, date!(2015 - 02 - 01)).expect_err("no rate for 2014-H2");
    assert_eq!(errors[0].field, "compose.invoices[0].due_date");
    assert!(errors[0].message.contains("2014-H2"));
}

#[test]
fn an_operator_table_replaces_the_embedded_one() {
    let table = RatesTable::from_toml(
        "[[half_year]]\nperiod = \"2026-H2\"\necb_mro_bp = 200\necb_source = \"BCE, test\"\n\
         legal_other_bp = 250\nlegal_private_creditor_bp = 600\nlegal_source = \"arrêté, test\"\n",
    )
    .expect("table");
    let v = b2b(json!([invoice("F-1", "2026-10-31", 100_000)]));
    let c = ComposeRequest::parse(&v, date!(2026 - 11 - 30), &table).expect("composition");
    assert_eq!(c.breakdown.invoices[0].periods[0].rate_bp, 1200);
    assert!(c.warnings.is_empty());
}

#[test]
fn every_invalid_field_is_listed_at_once() {
    let v = json!({
        "kind": "lettre",
        "creditor": {"name": " ", "address": "1 rue X", "siren": "123456789"},
        "agency": {"name": "Recouvre+"},
        "debtor": {"name": "D", "address": "2 rue Y", "kind": "company"},
        "invoices": [
            {"number": "A", "issue_date": "2026-13-01", "due_date": "2026-01-31", "amount_cents": 10.5},
            {"number": "B", "issue_date": "2026-02-01", "due_date": "2026-01-31", "amount_cents": 100, "paid_cents": 100},
            {"number": "C", "issue_date": "2026-01-01", "due_date": "2027-01-01", "amount_cents": 9007199254740992_i64}
        ],
        "deadline_days": 0,
        "payment": {"iban": "FR7630006000011234567890188", "link": "http://pay.example.fr"},
        "first_letter": {"reference": "R", "date": "2026-12-01"},
        "contract_rate_percent": 1.234,
        "override_prescription": "yes",
        "colour": "blue"
    });
    let errors = parse(&v, date!(2026 - 11 - 23)).expect_err("invalid");
    let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    fields.sort_unstable();
    fields.dedup();
    assert_eq!(
        fields,
        [
            "compose.agency.address",
            "compose.agency.mandate_reference",
            "compose.colour",
            "compose.contract_rate_percent",
            "compose.creditor.name",
            "compose.creditor.siren",
            "compose.deadline_days",
            "compose.debtor.kind",
            "compose.first_letter.date",
            "compose.invoices[0].amount_cents",
            "compose.invoices[0].issue_date",
            "compose.invoices[1].due_date",
            "compose.invoices[1].paid_cents",
            "compose.invoices[2].amount_cents",
            "compose.invoices[2].due_date",
            "compose.kind",
            "compose.override_prescription",
            "compose.payment.iban",
            "compose.payment.link",
        ]
    );
}

#[test]
fn a_time_barred_invoice_is_reported_with_the_other_errors() {
    let mut v = b2b(json!([
        invoice("OLD-1", "2021-11-23", 100_000),
        invoice("NEW-1", "2026-10-31", 100)
    ]));
    v["deadline_days"] = json!(99);
    let errors = parse(&v, date!(2026 - 11 - 24)).expect_err("invalid");
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["compose.deadline_days", "compose.invoices[0].due_date"]
    );
    assert!(errors[1].message.contains("time-barred"));
    v["override_prescription"] = json!(true);
    let errors = parse(&v, date!(2026 - 11 - 24)).expect_err("invalid");
    assert_eq!(errors.len(), 1);
}

#[test]
fn required_elements_are_named_when_missing() {
    let errors = parse(&json!({}), date!(2026 - 11 - 23)).expect_err("empty");
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    for f in [
        "compose.kind",
        "compose.creditor",
        "compose.debtor",
        "compose.invoices",
        "compose.payment",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    let not_overdue = b2b(json!([invoice("F-1", "2026-11-23", 100)]));
    let errors = parse(&not_overdue, date!(2026 - 11 - 23)).expect_err("nothing overdue");
    assert_eq!(errors[0].field, "compose.invoices");
    assert!(
        parse(
            &with(not_overdue, "kind", json!("relance")),
            date!(2026 - 11 - 23)
        )
        .is_ok()
    );
}

#[test]
fn default_letters_carry_every_mandatory_mention_without_additions() {
    let agency = json!({"name": "Recouvrement Alpes SAS", "address": "8 avenue Foch\n38000 Grenoble", "mandate_reference": "MAN-77"});
    for kind in ["relance", "mise_en_demeure"] {
        for with_agency in [false, true] {
            for debtor in ["professional", "consumer"] {
                let mut v = b2b(json!([
                    invoice("F-1", "2026-05-31", 123_456),
                    invoice("F-2", "2026-06-15", 99)
                ]));
                v["kind"] = json!(kind);
                v["debtor"]["kind"] = json!(debtor);
                v["payment"]["instructions"] = json!("Chèque à l'ordre d'Atelier Durand SARL");
                v["first_letter"] =
                    json!({"reference": "REL-1", "date": "2026-07-01", "kind": "relance"});
                if with_agency {
                    v["agency"] = agency.clone();
                }
                let c = ok(&v, date!(2026 - 11 - 23));
                let letter = write_letter(&c, None).expect("letter");
                let label = format!("{kind} agency={with_agency} {debtor}");
                assert!(
                    letter
                        .mentions
                        .iter()
                        .all(|m| m.status == MentionStatus::Present),
                    "{label}: {:?}",
                    letter.mentions
                );
                assert!(mentions::missing(&c, &letter.blocks).is_empty(), "{label}");
                let text = letter.plain_text();
                assert_eq!(text.contains(L111_8_PARAGRAPH_2), with_agency, "{label}");
                assert_eq!(text.contains(L111_8_PARAGRAPH_3), with_agency, "{label}");
                assert!(text.contains("https://pay.example.fr/i/42"), "{label}");
                if kind == "mise_en_demeure" {
                    assert!(text.contains("mise en demeure"), "{label}");
                }
                assert_eq!(
                    text.contains("Indemnité forfaitaire"),
                    debtor == "professional",
                    "{label}"
                );
                let checked: Vec<Mention> = letter.mentions.iter().map(|m| m.mention).collect();
                assert_eq!(
                    checked.contains(&Mention::L111_8Text),
                    with_agency,
                    "{label}"
                );
                assert_eq!(
                    checked.contains(&Mention::AmicableCollection),
                    with_agency,
                    "{label}"
                );
                assert_eq!(
                    checked.contains(&Mention::Consequences),
                    kind == "mise_en_demeure",
                    "{label}"
                );
                assert!(checked.contains(&Mention::FirstLetterReference), "{label}");
            }
        }
    }
}

#[test]
fn custom_wording_that_drops_mentions_gets_them_added() {
    let mut v = b2b(json!([invoice("F-1", "2026-05-31", 50_000)]));
    v["agency"] = json!({"name": "Recouvrement Alpes SAS", "address": "8 avenue Foch\n38000 Grenoble", "mandate_reference": "MAN-77"});
    let c = ok(&v, date!(2026 - 11 - 23));
    let wording = Wording::parse(
        "Bonjour {{debtor.name}},\n\nMerci de prendre contact avec nous au sujet des factures {{invoices}}.",
        "wording",
    )
    .expect("wording");
    let letter = write_letter(&c, Some(&wording)).expect("letter");
    let added: Vec<Mention> = letter
        .mentions
        .iter()
        .filter(|m| m.status == MentionStatus::Added)
        .map(|m| m.mention)
        .collect();
    assert_eq!(
        added,
        [
            Mention::CreditorIdentity,
            Mention::Deadline,
            Mention::Consequences,
            Mention::AmicableCollection
        ]
    );
    assert!(mentions::missing(&c, &letter.blocks).is_empty());
    let text = letter.plain_text();
    assert!(text.contains("Bonjour Boulangerie Martin,"));
    assert!(text.contains("injonction de payer") && text.contains("recouvrement amiable"));

    // Wording that says it all gets nothing added.
    let complete = Wording::parse(
        "{{agency.name}} exerce une activité de recouvrement amiable pour {{creditor.name}}, {{creditor.address}}.\n\n\
         Nous vous mettons en demeure de payer {{total}} dans un délai de {{deadline}}, faute de quoi une injonction de payer, un référé-provision ou une assignation pourront suivre ; \
         l'assignation serait précédée d'une tentative de résolution amiable (code de procédure civile, art. 750-1).",
        "wording",
    )
    .expect("wording");
    let letter = write_letter(&c, Some(&complete)).expect("letter");
    assert!(
        letter
            .mentions
            .iter()
            .all(|m| m.status == MentionStatus::Present),
        "{:?}",
        letter.mentions
    );
}

#[test]
fn the_check_reads_the_final_blocks() {
    let mut v = b2b(json!([invoice("F-1", "2026-05-31", 50_000)]));
    v["agency"] = json!({"name": "Recouvrement Alpes SAS", "address": "8 avenue Foch", "mandate_reference": "MAN-77"});
    let c = ok(&v, date!(2026 - 11 - 23));
    let letter = write_letter(&c, None).expect("letter");
    let without_quotes: Vec<Block> = letter
        .blocks
        .iter()
        .filter(|b| !matches!(b, Block::Quote { .. }))
        .cloned()
        .collect();
    assert_eq!(
        mentions::missing(&c, &without_quotes),
        [Mention::L111_8Text]
    );
    let altered: Vec<Block> = letter
        .blocks
        .iter()
        .map(|b| match b {
            Block::Quote { text, source } => Block::Quote {
                text: text.replace("mauvaise foi", "bonne foi"),
                source: source.clone(),
            },
            other => other.clone(),
        })
        .collect();
    assert_eq!(mentions::missing(&c, &altered), [Mention::L111_8Text]);
}

#[test]
fn a_placeholder_the_request_does_not_give_is_an_error() {
    let c = ok(
        &b2b(json!([invoice("F-1", "2026-05-31", 50_000)])),
        date!(2026 - 11 - 23),
    );
    let w = Wording::parse("Dossier {{agency.mandate_reference}}", "wording").expect("wording");
    let errors = write_letter(&c, Some(&w)).expect_err("no agency");
    assert!(errors[0].message.contains("agency.mandate_reference"));
}

#[test]
fn the_summary_serialises_the_breakdown_rates_and_mentions() {
    let c = ok(
        &b2b(json!([invoice("F-1", "2026-05-31", 50_000)])),
        date!(2026 - 11 - 23),
    );
    let letter = write_letter(&c, None).expect("letter");
    let json = serde_json::to_value(letter.summary(&c)).expect("json");
    assert_eq!(json["kind"], "mise_en_demeure");
    assert_eq!(json["letter_date"], "2026-11-23");
    assert_eq!(json["breakdown"]["regime"], "commercial");
    assert_eq!(
        json["breakdown"]["rates_used"][0]["rate"],
        "ecb_main_refinancing"
    );
    assert_eq!(json["breakdown"]["rates_used"][1]["half_year"], "2026-H2");
    assert_eq!(
        json["breakdown"]["rates_used"][1]["table_half_year"],
        "2026-H1"
    );
    assert_eq!(json["warnings"][0]["code"], "rate_missing");
    assert_eq!(json["mentions"][0]["mention"], "mise_en_demeure_words");
    let blocks = serde_json::to_value(&letter.blocks).expect("json");
    assert_eq!(blocks[0]["type"], "sender_address");
}

/// A small deterministic generator (64-bit LCG, Knuth's constants): the same cases on
/// every run, without a property-testing dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

#[test]
fn a_consumer_never_owes_the_recovery_indemnity_and_amounts_always_add_up() {
    let mut rng = Lcg(0x5EED_2026);
    let mut consumer_cases = 0;
    for case in 0..600 {
        let letter_date = date!(2022 - 06 - 01) + time::Duration::days(rng.next(1_636) as i64);
        let n = 1 + rng.next(4) as usize;
        let invoices: Vec<Value> = (0..n)
            .map(|i| {
                let due = letter_date - time::Duration::days(rng.next(500) as i64);
                let amount = 1 + rng.next(5_000_000) as i64;
                json!({
                    "number": format!("G-{case}-{i}"),
                    "issue_date": due.to_string(),
                    "due_date": due.to_string(),
                    "amount_cents": amount,
                    "paid_cents": rng.next(amount as u64) as i64,
                })
            })
            .collect();
        let mut v = b2b(Value::Array(invoices));
        v["kind"] = json!(if rng.next(2) == 0 {
            "relance"
        } else {
            "mise_en_demeure"
        });
        let is_consumer = rng.next(2) == 0;
        v["debtor"]["kind"] = json!(if is_consumer {
            "consumer"
        } else {
            "professional"
        });
        if rng.next(3) == 0 {
            v["creditor"]["kind"] = json!("private_person");
        }
        if rng.next(3) == 0 {
            v["contract_rate_percent"] = json!(1 + rng.next(20));
        }
        if rng.next(2) == 0 {
            let first = letter_date - time::Duration::days(1 + rng.next(60) as i64);
            v["first_letter"] =
                json!({"reference": "R-1", "date": first.to_string(), "kind": "mise_en_demeure"});
        }
        v["override_prescription"] = json!(true);
        let Ok(c) = parse(&v, letter_date) else {
            // Only "nothing overdue" for a mise en demeure may refuse these inputs.
            let errors = parse(&v, letter_date).expect_err("refused");
            assert!(
                errors.iter().all(|e| e.field == "compose.invoices"),
                "{errors:?}"
            );
            continue;
        };
        let b = &c.breakdown;
        if is_consumer {
            consumer_cases += 1;
            assert_eq!(b.totals.indemnity_cents, 0, "case {case}");
            assert!(
                b.invoices.iter().all(|i| i.indemnity_cents == 0),
                "case {case}"
            );
            let text = write_letter(&c, None).expect("letter").plain_text();
            assert!(!text.contains("Indemnité forfaitaire"), "case {case}");
        }
        for (inv, i) in c.request.invoices.iter().zip(&b.invoices) {
            // D.441-5: €40 per late invoice between professionals, nothing otherwise.
            let late_b2b = b.regime == InterestRegime::Commercial && inv.due_date < letter_date;
            assert_eq!(
                i.indemnity_cents,
                if late_b2b {
                    RECOVERY_INDEMNITY_CENTS
                } else {
                    0
                }
            );
            assert_eq!(
                i.total_cents,
                i.principal_cents + i.interest_cents + i.indemnity_cents
            );
            assert_eq!(
                i.periods.iter().map(|p| p.interest_cents).sum::<i64>(),
                i.interest_cents
            );
            assert!(i.indemnity_cents == 0 || i.indemnity_cents == RECOVERY_INDEMNITY_CENTS);
            assert!(
                i.periods
                    .iter()
                    .all(|p| p.from <= p.to && p.to <= letter_date)
            );
        }
        assert_eq!(
            b.totals.total_cents,
            b.totals.principal_cents + b.totals.interest_cents + b.totals.indemnity_cents
        );
    }
    assert!(consumer_cases > 200, "only {consumer_cases} consumer cases");
}

// Worked cases computed independently of the code (Python 3, `fractions.Fraction`):
// interest = principal × rate_bp × days / (10 000 × days of the year), days counted with
// both ends included, rounded once half up — the actual/actual convention of Code de
// commerce L.441-10 and Code civil 1231-6 applied per calendar year.

#[test]
fn worked_case_a_consumer_owes_interest_only_on_invoices_the_first_mise_en_demeure_covered() {
    // Notice of 1 March 2026 covers C-1 (due 31 January) but not C-2 (due 15 March, owed
    // only after the notice): Code civil 1231-6, 1344-1.
    // C-1: 2 March – 30 April 2026 = 60 days at 2,62 % (legal rate "autres cas", 2026-H1):
    //   >>> Fraction(150000*262*60, 10000*365)  →  47160/73 = 646.027… → 646 cents
    // C-2: no interest before the present letter.
    let v = with(
        consumer(b2b(json!([
            invoice("C-1", "2026-01-31", 150_000),
            invoice("C-2", "2026-03-15", 80_000)
        ]))),
        "first_letter",
        json!({"reference": "MED-1", "date": "2026-03-01", "kind": "mise_en_demeure"}),
    );
    let c = ok(&v, date!(2026 - 04 - 30));
    let b = &c.breakdown;
    assert_eq!(b.invoices[0].interest_from, Some(date!(2026 - 03 - 02)));
    assert_eq!(b.invoices[0].interest_cents, 646);
    assert_eq!(b.invoices[1].interest_cents, 0);
    assert!(b.invoices[1].periods.is_empty());
    assert_eq!(b.totals.indemnity_cents, 0);
    assert_eq!(b.totals.total_cents, 150_000 + 80_000 + 646);
}

#[test]
fn worked_case_a_debt_born_before_collective_proceedings_is_refused_with_the_reason() {
    // Code de commerce L.622-7, L.622-21: redressement opened on 1 March 2026; F-OLD was
    // performed on 15 January (before), F-NEW on 10 March (after, payable normally).
    let mut v = b2b(json!([
        {"number": "F-OLD", "issue_date": "2026-01-20", "performed_on": "2026-01-15", "due_date": "2026-02-20", "amount_cents": 100_000},
        {"number": "F-NEW", "issue_date": "2026-03-10", "due_date": "2026-03-31", "amount_cents": 50_000}
    ]));
    v["debtor"]["insolvency"] = json!({"kind": "redressement", "opened_on": "2026-03-01"});
    let errors = parse(&v, date!(2026 - 04 - 30)).expect_err("refused");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "compose.invoices[0]");
    assert!(
        errors[0].message.contains("L.622-21"),
        "{}",
        errors[0].message
    );
    assert!(errors[0].message.contains("declare the claim"));

    // Only the debt born after the opening: 1–30 April 2026 = 30 days at ECB 2,15 % + 10:
    //   >>> Fraction(50000*1215*30, 10000*365)  →  499.315… → 499 cents, plus 40 €.
    v["invoices"] = json!([{"number": "F-NEW", "issue_date": "2026-03-10", "due_date": "2026-03-31", "amount_cents": 50_000}]);
    let c = ok(&v, date!(2026 - 04 - 30));
    assert_eq!(c.breakdown.invoices[0].interest_cents, 499);
    assert_eq!(c.breakdown.totals.total_cents, 50_000 + 499 + 4_000);
}

#[test]
fn prescription_runs_from_performance_and_restarts_at_an_acknowledgement() {
    // Consumer, performed 10 March 2024, invoiced and due later: the two years of L.218-2
    // end on 10 March 2026 (day of: open; day after: time-barred).
    let inv = |extra: Value| {
        let mut i = json!({"number": "C-1", "issue_date": "2024-04-01", "performed_on": "2024-03-10", "due_date": "2024-05-01", "amount_cents": 10_000});
        if let (Some(o), Some(e)) = (i.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        consumer(with(b2b(json!([i])), "kind", json!("relance")))
    };
    let plain = inv(json!({}));
    assert!(parse(&plain, date!(2026 - 03 - 09)).is_ok());
    assert!(parse(&plain, date!(2026 - 03 - 10)).is_ok());
    let errors = parse(&plain, date!(2026 - 03 - 11)).expect_err("time-barred");
    assert!(
        errors[0]
            .message
            .contains("unless interrupted or suspended (Code civil 2240, 2241, 2244, 2238)")
    );
    // An acknowledgement on 2 February 2026 restarts two years (Code civil 2240).
    let acknowledged = inv(json!({"acknowledged_on": "2026-02-02"}));
    assert!(parse(&acknowledged, date!(2026 - 03 - 11)).is_ok());
    assert!(parse(&acknowledged, date!(2028 - 02 - 02)).is_ok());
    assert!(parse(&acknowledged, date!(2028 - 02 - 03)).is_err());
}

#[test]
fn a_missing_half_year_is_stated_as_absent_from_our_table_never_as_unknown() {
    let c = ok(
        &b2b(json!([invoice("F-1", "2026-06-30", 100_000)])),
        date!(2026 - 07 - 31),
    );
    let text = write_letter(&c, None).expect("letter").plain_text();
    assert!(
        text.contains("Faute de valeur pour le second semestre 2026 dans notre table"),
        "{text}"
    );
    assert!(!text.contains("pas connu"), "{text}");
}

#[test]
fn with_missing_rate_refuse_a_letter_needing_an_absent_half_year_is_refused_naming_it() {
    // The shipped table ends at 2026-H1; a consumer letter counting interest from
    // 2 September 2026 needs the 2026-H2 legal rate.
    let later = with(
        consumer(b2b(json!([invoice("C-1", "2026-06-30", 200_000)]))),
        "first_letter",
        json!({"reference": "MED-2026-0042", "date": "2026-09-01", "kind": "mise_en_demeure"}),
    );
    let refuse = RatesTable::embedded().with_missing_rate(MissingRate::Refuse);
    let errors = ComposeRequest::parse(&later, date!(2026 - 10 - 01), &refuse)
        .expect_err("refused without 2026-H2");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "compose.invoices");
    assert!(
        errors[0].message.contains("2026-H2"),
        "{}",
        errors[0].message
    );
    assert!(errors[0].message.contains("refuse"));
}

#[test]
fn by_default_a_letter_needing_an_absent_half_year_applies_the_latest_value_and_warns() {
    let later = with(
        consumer(b2b(json!([invoice("C-1", "2026-06-30", 200_000)]))),
        "first_letter",
        json!({"reference": "MED-2026-0042", "date": "2026-09-01", "kind": "mise_en_demeure"}),
    );
    assert_eq!(
        RatesTable::embedded().missing_rate(),
        MissingRate::ApplyLatest
    );
    let c = ok(&later, date!(2026 - 10 - 01));
    // 30 days at the 2026-H1 legal rate (2,62 %): 200 000 × 262 × 30 / 3 650 000 = 430,7 → 431.
    assert_eq!(c.breakdown.invoices[0].interest_cents, 431);
    assert!(c.warnings.iter().any(|w| w.code == "rate_missing"
        && w.message.contains("2026-H2")
        && w.message.contains("2026-H1")));
}

fn b2b_merchants(invoices: Value) -> Value {
    let mut v = b2b(invoices);
    v["creditor"]["merchant"] = json!(true);
    v
}

#[test]
fn l110_4_is_cited_only_when_the_creditor_or_the_debtor_is_a_merchant() {
    let letter_date = date!(2026 - 11 - 23);
    let invoices = json!([invoice("F-1", "2026-05-31", 50_000)]);
    let rule = |v: &Value| ok(v, letter_date).prescription[0].rule.clone();
    assert_eq!(
        rule(&b2b(invoices.clone())),
        "Code civil, art. 2224 (5 ans)"
    );
    assert_eq!(
        rule(&b2b_merchants(invoices.clone())),
        "Code de commerce, art. L.110-4 (5 ans)"
    );
    let mut debtor_merchant = b2b(invoices.clone());
    debtor_merchant["debtor"]["merchant"] = json!(true);
    assert_eq!(
        rule(&debtor_merchant),
        "Code de commerce, art. L.110-4 (5 ans)"
    );
    // A merchant's claim against a consumer: two years (L.218-2), not L.110-4.
    let consumer_of_merchant = consumer(b2b_merchants(invoices.clone()));
    let p = &ok(&consumer_of_merchant, letter_date).prescription[0];
    assert_eq!(
        (p.years, p.rule.as_str()),
        (2, "Code de la consommation, art. L.218-2 (2 ans)")
    );
    // The flag changes prescription only: the commercial interest regime stays.
    assert_eq!(
        ok(&b2b_merchants(invoices.clone()), letter_date)
            .breakdown
            .regime,
        InterestRegime::Commercial
    );

    // A private person or a consumer is not a merchant for this claim; a flag is a boolean.
    let mut private = b2b_merchants(invoices.clone());
    private["creditor"]["kind"] = json!("private_person");
    let mut consumer_merchant = consumer(b2b(invoices.clone()));
    consumer_merchant["debtor"]["merchant"] = json!(true);
    let mut not_bool = b2b(invoices);
    not_bool["debtor"]["merchant"] = json!("yes");
    for (v, field) in [
        (private, "compose.creditor.merchant"),
        (consumer_merchant, "compose.debtor.merchant"),
        (not_bool, "compose.debtor.merchant"),
    ] {
        let errors = parse(&v, letter_date).expect_err("refused");
        assert_eq!(
            errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
            [field],
            "{errors:?}"
        );
    }
}

#[test]
fn a_time_barred_invoice_reported_with_other_errors_cites_l110_4_for_merchants() {
    let mut v = b2b_merchants(json!([invoice("OLD-1", "2020-01-10", 100_000)]));
    v["deadline_days"] = json!(0);
    let errors = parse(&v, date!(2026 - 11 - 23)).expect_err("invalid");
    let barred = errors
        .iter()
        .find(|e| e.field == "compose.invoices[0].due_date")
        .expect("the time-barred invoice is listed too");
    assert!(
        barred.message.contains("L.110-4")
            && barred.message.contains(
                "time-barred unless interrupted or suspended (Code civil 2240, 2241, 2244, 2238)"
            ),
        "{}",
        barred.message
    );
}

/// Boundaries of the prescription through the whole composer: the day before and the day
/// of the limit compose, the day after is refused with the rule and the interruptions named.
fn assert_limit(v: &Value, limit: Date, rule: &str) {
    let before = ok(v, limit.previous_day().expect("day"));
    assert_eq!(before.prescription[0].days_left, 1);
    assert!(
        before
            .warnings
            .iter()
            .any(|w| w.code == "prescription_near" && !w.on_letter)
    );
    let last = ok(v, limit);
    assert_eq!(
        (last.prescription[0].limit, last.prescription[0].days_left),
        (limit, 0)
    );
    let after = limit.next_day().expect("day");
    let errors = parse(v, after).expect_err("time-barred the day after");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "compose.invoices[0].due_date");
    for needle in [
        "time-barred unless interrupted or suspended (Code civil 2240, 2241, 2244, 2238)",
        rule,
        limit.to_string().as_str(),
    ] {
        assert!(
            errors[0].message.contains(needle),
            "{needle:?} not in {}",
            errors[0].message
        );
    }
}

#[test]
fn two_years_against_a_consumer_from_performance_with_and_without_acknowledgement() {
    // L.218-2; Cass. 1re civ. 19 mai 2021 n° 20-12.520: from the performance (15 January
    // 2024), not from the invoice (1 March) nor the due date (31 March).
    let inv = |extra: Value| {
        let mut i = json!({"number": "C-7", "performed_on": "2024-01-15", "issue_date": "2024-03-01", "due_date": "2024-03-31", "amount_cents": 30_000});
        if let (Some(o), Some(e)) = (i.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        consumer(b2b(json!([i])))
    };
    let rule = "Code de la consommation, art. L.218-2 (2 ans)";
    assert_limit(&inv(json!({})), date!(2026 - 01 - 15), rule);
    // Code civil 2240: acknowledged on 20 June 2025, two new years.
    assert_limit(
        &inv(json!({"acknowledged_on": "2025-06-20"})),
        date!(2027 - 06 - 20),
        rule,
    );
}

#[test]
fn five_years_from_performance_with_and_without_acknowledgement() {
    let inv = |v: fn(Value) -> Value, extra: Value| {
        let mut i = json!({"number": "F-9", "performed_on": "2021-09-30", "issue_date": "2021-10-15", "due_date": "2021-11-15", "amount_cents": 30_000});
        if let (Some(o), Some(e)) = (i.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v(json!([i]))
    };
    for (make, rule) in [
        (
            b2b_merchants as fn(Value) -> Value,
            "Code de commerce, art. L.110-4 (5 ans)",
        ),
        (b2b as fn(Value) -> Value, "Code civil, art. 2224 (5 ans)"),
    ] {
        assert_limit(&inv(make, json!({})), date!(2026 - 09 - 30), rule);
        assert_limit(
            &inv(make, json!({"acknowledged_on": "2023-03-01"})),
            date!(2028 - 03 - 01),
            rule,
        );
    }
}

#[test]
fn an_overridden_prescription_leaves_out_every_court_threat_and_is_recorded() {
    let v = with(
        consumer(b2b(json!([invoice("C-1", "2023-01-31", 80_000)]))),
        "override_prescription",
        json!(true),
    );
    let c = ok(&v, date!(2026 - 11 - 23));
    assert_eq!(c.overrides.len(), 1);
    let letter = write_letter(&c, None).expect("letter");
    let text = letter.plain_text().to_lowercase();
    for term in mentions::COURT_ACTION_TERMS {
        assert!(!text.contains(term), "{term:?} in\n{text}");
    }
    assert!(text.contains("mise en demeure"), "still a mise en demeure");
    assert!(
        !letter
            .mentions
            .iter()
            .any(|m| m.mention == Mention::Consequences)
    );
    let summary = serde_json::to_value(letter.summary(&c)).expect("json");
    assert_eq!(summary["prescription_overridden"], true);
    assert_eq!(summary["prescription_overrides"][0]["invoice"], "C-1");

    // Custom wording threatening court on a time-barred claim is refused, naming the words.
    let threat = Wording::parse(
        "Nous vous mettons en demeure de payer {{total}} sous {{deadline}}, faute de quoi nous saisirons le tribunal.",
        "wording",
    )
    .expect("wording");
    let errors = write_letter(&c, Some(&threat)).expect_err("refused");
    assert_eq!(errors[0].field, "compose.override_prescription");
    assert!(
        errors[0].message.contains("tribunal") && errors[0].message.contains("L.121-2"),
        "{}",
        errors[0].message
    );

    // The flag alone, on invoices within their term, changes nothing: the consequences
    // stay and the summary has no `prescription_overridden` key.
    let within = with(
        b2b(json!([invoice("F-1", "2026-05-31", 50_000)])),
        "override_prescription",
        json!(true),
    );
    let c = ok(&within, date!(2026 - 11 - 23));
    let letter = write_letter(&c, None).expect("letter");
    assert!(letter.plain_text().contains("assignation"));
    let summary = serde_json::to_value(letter.summary(&c)).expect("json");
    assert!(
        summary.get("prescription_overridden").is_none(),
        "{summary}"
    );
}

#[test]
fn up_to_5000_euros_an_assignation_is_said_to_follow_an_amicable_attempt() {
    // A consumer's first mise en demeure: no interest, no indemnity, so the total is the
    // principal and the 5 000,00 € boundary can be hit exactly.
    let letter_date = date!(2026 - 11 - 23);
    let text_for = |cents: i64| {
        let v = consumer(b2b(json!([invoice("C-1", "2026-09-30", cents)])));
        let c = ok(&v, letter_date);
        assert_eq!(c.breakdown.totals.total_cents, cents);
        write_letter(&c, None).expect("letter").plain_text()
    };
    for (cents, expected) in [(499_999, true), (500_000, true), (500_001, false)] {
        let text = text_for(cents);
        assert!(text.contains("assignation"));
        assert_eq!(
            text.contains(mentions::ART_750_1_SENTENCE),
            expected,
            "{cents} cents:\n{text}"
        );
    }
    // The sentence names the three attempts and keeps the injonction de payer out of it.
    for needle in [
        "750-1",
        "conciliateur de justice",
        "médiation",
        "procédure participative",
        "injonction de payer n'y est pas soumise",
    ] {
        assert!(mentions::ART_750_1_SENTENCE.contains(needle), "{needle}");
    }

    // A relance says nothing of court, so nothing of 750-1...
    let relance = with(
        consumer(b2b(json!([invoice("C-1", "2026-09-30", 20_000)]))),
        "kind",
        json!("relance"),
    );
    let c = ok(&relance, letter_date);
    let text = write_letter(&c, None).expect("letter").plain_text();
    assert!(!text.contains("assignation") && !text.contains("750-1"));
    // ...unless its wording mentions an assignation: the consequences are then added, with
    // the amicable attempt.
    let wording = Wording::parse(
        "Sans règlement de {{total}} sous {{deadline}}, une assignation pourra vous être délivrée.",
        "wording",
    )
    .expect("wording");
    let letter = write_letter(&c, Some(&wording)).expect("letter");
    assert!(
        letter.plain_text().contains(mentions::ART_750_1_SENTENCE),
        "{}",
        letter.plain_text()
    );
    assert!(
        letter
            .mentions
            .iter()
            .any(|m| m.mention == Mention::Consequences && m.status == MentionStatus::Added)
    );
}

/// The worked cases of docs/COLLECTION.md, computed independently of this code by
/// `tests/fixtures/collection/worked_cases.py` (exact `Fraction` arithmetic: principal ×
/// rate × days ÷ days of the year, per half-year, Code civil 1343-1 imputation, one
/// half-up rounding of each invoice's running total) into `worked_cases.json`: the
/// composer must give the same cents of interest, indemnity and total.
#[test]
fn worked_cases_match_the_independent_computation() {
    let cases: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/collection/worked_cases.json"
    ))
    .expect("the committed worked cases are JSON");
    let cases = cases["cases"].as_array().expect("cases");
    assert!(cases.len() >= 7, "every worked case is listed");
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let letter_date = Date::parse(
            case["letter_date"].as_str().expect("date"),
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .expect("date");
        let result = parse(&case["compose"], letter_date);
        if let Some(field) = case["refused_field"].as_str() {
            let errors = result
                .err()
                .unwrap_or_else(|| panic!("{name}: must be refused"));
            assert!(
                errors.iter().any(|e| e.field == field),
                "{name}: {field} not in {errors:?}"
            );
            continue;
        }
        let c = result.unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let expected = case["invoices"].as_array().expect("invoices");
        assert_eq!(c.breakdown.invoices.len(), expected.len(), "{name}");
        for (got, want) in c.breakdown.invoices.iter().zip(expected) {
            let got = json!({
                "number": got.number,
                "principal_cents": got.principal_cents,
                "interest_cents": got.interest_cents,
                "interest_paid_cents": got.interest_paid_cents,
                "indemnity_cents": got.indemnity_cents,
                "total_cents": got.total_cents,
            });
            assert_eq!(&got, want, "{name}");
        }
        let t = c.breakdown.totals;
        assert_eq!(
            json!({
                "principal_cents": t.principal_cents,
                "interest_cents": t.interest_cents,
                "indemnity_cents": t.indemnity_cents,
                "total_cents": t.total_cents,
            }),
            case["totals"],
            "{name}"
        );
        // Every case writes a letter whose mandatory mentions are all there.
        let text = write_letter(&c, None)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"))
            .plain_text();
        // The rule of each case is stated in the letter's breakdown.
        let needle = match name {
            "b2b_across_a_half_year_boundary" => "L.441-10",
            "b2b_contract_rate_below_the_floor" => {
                "Lecture retenue de l'article L.441-10 : le minimum est de trois fois le taux de l'intérêt légal (autres cas) de chaque semestre"
            }
            "consumer_after_a_first_mise_en_demeure" => "1344-1",
            "dated_part_payment_imputed_to_interest_first" => "1343-1",
            "invoice_paid_late_in_full" => "aucun principal n'est réclamé",
            "public_buyer" => "R.2192-31",
            other => panic!("unexpected case {other}"),
        };
        assert!(text.contains(needle), "{name}: {needle:?} not in\n{text}");
    }
}

fn fields(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.field.as_str()).collect()
}

#[test]
fn bad_dated_payments_are_refused_naming_their_path() {
    let v = b2b(json!([
        {"number": "F-1", "issue_date": "2026-01-10", "due_date": "2026-01-31", "amount_cents": 100_000,
         "payments": [
            {"date": "2026-05-02", "amount_cents": 100},
            {"date": "2026-01-09", "amount_cents": 100},
            {"date": "2026-02-01", "amount_cents": 0},
            {"date": "2026-02-01", "amount_cents": 100, "imputation": "whatever"}
         ]}
    ]));
    let errors = parse(&v, date!(2026 - 05 - 01)).expect_err("refused");
    for field in [
        "compose.invoices[0].payments[0].date",
        "compose.invoices[0].payments[1].date",
        "compose.invoices[0].payments[2].amount_cents",
        "compose.invoices[0].payments[3].imputation",
    ] {
        assert!(fields(&errors).contains(&field), "{field}: {errors:?}");
    }
    // More than was owed on its date (principal + interest so far): refused.
    let over = b2b(json!([
        {"number": "F-1", "issue_date": "2026-01-10", "due_date": "2026-01-31", "amount_cents": 100_000,
         "payments": [{"date": "2026-02-10", "amount_cents": 100_001 + 400}]}
    ]));
    let errors = parse(&over, date!(2026 - 05 - 01)).expect_err("refused");
    assert_eq!(
        fields(&errors),
        ["compose.invoices[0].payments[0].amount_cents"],
        "{errors:?}"
    );
    assert!(
        errors[0]
            .message
            .contains("exceeds what was owed on 2026-02-10")
    );
}

#[test]
fn a_payment_pays_interest_first_unless_imputed_to_principal() {
    // 1 000 000 due 2025-12-31, 300 000 paid 2026-03-01: 60 days at 12,15 % on 1 000 000
    // = 19 972,6… → 19 973 of interest paid first, 280 027 to the principal.
    let v = |imputation: Value| {
        b2b(
            json!([{"number": "F-1", "issue_date": "2025-12-31", "due_date": "2025-12-31", "amount_cents": 1_000_000,
            "payments": [{"date": "2026-03-01", "amount_cents": 300_000, "imputation": imputation}]}]),
        )
    };
    let c = ok(&v(Value::Null), date!(2026 - 05 - 15));
    let inv = &c.breakdown.invoices[0];
    assert_eq!(
        (
            inv.payments[0].to_interest_cents,
            inv.payments[0].to_principal_cents,
            inv.principal_cents
        ),
        (19_973, 280_027, 719_973)
    );
    assert_eq!(inv.periods[0].principal_cents, 1_000_000);
    assert_eq!(inv.periods.last().map(|p| p.principal_cents), Some(719_973));
    let text = write_letter(&c, None).expect("letter").plain_text();
    assert!(text.contains("1343-1"), "{text}");
    assert!(
        text.contains(&french::euros(719_973)),
        "principal left shown: {text}"
    );
    // Agreed imputation: the whole payment to the principal; the interest stays owed.
    let c = ok(&v(json!("principal")), date!(2026 - 05 - 15));
    let inv = &c.breakdown.invoices[0];
    assert_eq!((inv.principal_cents, inv.interest_paid_cents), (700_000, 0));
    assert!(inv.interest_cents > 19_973);
}

#[test]
fn an_invoice_paid_late_in_full_is_claimed_for_interest_and_indemnity_only() {
    let v = b2b(
        json!([{"number": "F-9", "issue_date": "2026-01-31", "due_date": "2026-01-31", "amount_cents": 200_000,
        "payments": [{"date": "2026-03-15", "amount_cents": 200_000, "imputation": "principal"}]}]),
    );
    let c = ok(&v, date!(2026 - 04 - 01));
    let inv = &c.breakdown.invoices[0];
    assert_eq!(inv.principal_cents, 0);
    assert_eq!(inv.indemnity_cents, RECOVERY_INDEMNITY_CENTS);
    // Interest stops at the payment day: 2026-02-01 to 2026-03-15.
    assert_eq!(
        inv.periods.last().map(|p| p.to),
        Some(date!(2026 - 03 - 15))
    );
    let text = write_letter(&c, None).expect("letter").plain_text();
    assert!(text.contains("aucun principal n'est réclamé"), "{text}");
    // Paid in full on time: nothing to claim, refused.
    let on_time = b2b(
        json!([{"number": "F-9", "issue_date": "2026-01-01", "due_date": "2026-01-31", "amount_cents": 200_000,
        "payments": [{"date": "2026-01-30", "amount_cents": 200_000}]}]),
    );
    let errors = parse(&on_time, date!(2026 - 04 - 01)).expect_err("refused");
    assert!(
        fields(&errors).contains(&"compose.invoices[0].payments"),
        "{errors:?}"
    );
}

#[test]
fn prior_notices_are_checked_against_the_letters_invoices() {
    let v = with(
        consumer(b2b(json!([
            invoice("C-1", "2026-01-15", 10_000),
            invoice("C-2", "2026-03-01", 10_000)
        ]))),
        "prior_notices",
        json!([
            {"kind": "mise_en_demeure", "reference": "M-1", "date": "2026-02-10", "invoices": ["C-1", "C-9", "C-2"]},
            {"kind": "mise_en_demeure", "reference": "M-2", "date": "2026-05-10", "invoices": ["C-1"]},
            {"kind": "avis", "reference": "M-3", "date": "2026-02-10"},
            {"kind": "mise_en_demeure", "reference": "M-4", "date": "2026-03-10"}
        ]),
    );
    let errors = parse(&v, date!(2026 - 04 - 20)).expect_err("refused");
    for field in [
        "compose.prior_notices[0].invoices[1]",
        "compose.prior_notices[0].invoices[2]",
        "compose.prior_notices[1].date",
        "compose.prior_notices[2].kind",
        "compose.prior_notices[3].invoices",
    ] {
        assert!(fields(&errors).contains(&field), "{field}: {errors:?}");
    }
}

#[test]
fn a_consumer_invoice_earns_interest_only_from_a_notice_that_covered_it() {
    // `first_letter` (mise en demeure of 2026-02-10) covers C-1 only (overdue then); the
    // prior notice of 2026-03-10 covers C-2.
    let v = with(
        with(
            consumer(b2b(json!([
                invoice("C-1", "2026-01-15", 100_000),
                invoice("C-2", "2026-03-01", 100_000),
                invoice("C-3", "2026-03-05", 100_000)
            ]))),
            "first_letter",
            json!({"reference": "M-1", "date": "2026-02-10", "kind": "mise_en_demeure"}),
        ),
        "prior_notices",
        json!([{"kind": "mise_en_demeure", "reference": "M-2", "date": "2026-03-10", "invoices": ["C-2"]}]),
    );
    let c = ok(&v, date!(2026 - 04 - 20));
    let from: Vec<Option<Date>> = c
        .breakdown
        .invoices
        .iter()
        .map(|i| i.interest_from)
        .collect();
    assert_eq!(
        from,
        [
            Some(date!(2026 - 02 - 11)),
            Some(date!(2026 - 03 - 11)),
            None
        ]
    );
    assert_eq!(c.breakdown.invoices[2].interest_cents, 0);
    let text = write_letter(&c, None).expect("letter").plain_text();
    assert!(
        text.contains("facture C-3 : aucun intérêt avant la présente lettre"),
        "{text}"
    );
    assert!(text.contains("1344-1"), "{text}");
}

#[test]
fn an_agencys_later_letter_must_recall_its_first_letter_r124_4() {
    let agency = json!({"name": "Recouvr SAS", "address": "8 avenue Foch\n75116 Paris", "mandate_reference": "MAN-77"});
    let base = with(
        b2b(json!([invoice("F-1", "2026-01-15", 100_000)])),
        "agency",
        agency,
    );
    let later = with(
        base.clone(),
        "prior_notices",
        json!([{"kind": "relance", "reference": "R-1", "date": "2026-02-01", "sent_by": "agency"}]),
    );
    let errors = parse(&later, date!(2026 - 04 - 20)).expect_err("refused");
    assert!(
        errors
            .iter()
            .any(|e| e.field == "compose.prior_notices" && e.message.contains("R.124-4")),
        "{errors:?}"
    );
    let recalled = with(
        base.clone(),
        "prior_notices",
        json!([
            {"kind": "agency_first_letter", "reference": "AG-1", "date": "2026-01-20"},
            {"kind": "relance", "reference": "R-1", "date": "2026-02-01", "sent_by": "agency"}
        ]),
    );
    let c = ok(&recalled, date!(2026 - 04 - 20));
    let text = write_letter(&c, None).expect("letter").plain_text();
    assert!(
        text.contains(
            "Rappel du premier courrier de Recouvr SAS : référence AG-1 du 20 janvier 2026"
        ),
        "{text}"
    );
    assert!(text.contains("envoyée par Recouvr SAS"), "{text}");
    // An agency_first_letter without an agency is refused.
    let no_agency = with(
        b2b(json!([invoice("F-1", "2026-01-15", 100_000)])),
        "prior_notices",
        json!([{"kind": "agency_first_letter", "reference": "AG-1", "date": "2026-01-20"}]),
    );
    assert!(
        parse(&no_agency, date!(2026 - 04 - 20))
            .expect_err("refused")
            .iter()
            .any(|e| e.field == "compose.prior_notices")
    );
}

#[test]
fn a_public_buyers_rate_is_fixed_at_the_half_year_interest_started() {
    let mut v = b2b(json!([invoice("P-1", "2025-06-10", 800_000)]));
    v["debtor"]["kind"] = json!("public_buyer");
    let c = ok(&v, date!(2026 - 01 - 20));
    assert_eq!(c.breakdown.regime, InterestRegime::PublicProcurement);
    // ECB 3,15 % on 1 January 2025 + 8 points, for 2025-H2 and 2026-H1 as well (their own
    // ECB rate, 2,15 %, is not re-read: R.2192-31).
    assert!(
        c.breakdown.invoices[0]
            .periods
            .iter()
            .all(|p| p.rate_bp == 1115 && p.basis == RateBasis::EcbPlusEightPointsFixed),
        "{:?}",
        c.breakdown.invoices[0].periods
    );
    assert_eq!(c.breakdown.invoices[0].periods.len(), 3);
    assert_eq!(c.breakdown.totals.indemnity_cents, RECOVERY_INDEMNITY_CENTS);
    let text = write_letter(&c, None).expect("letter").plain_text();
    assert!(
        text.contains("R.2192-31") && text.contains("D.2192-35"),
        "{text}"
    );
    // No contract rate for a public buyer.
    let errors = parse(
        &with(v, "contract_rate_percent", json!(12)),
        date!(2026 - 01 - 20),
    )
    .expect_err("refused");
    assert_eq!(fields(&errors), ["compose.contract_rate_percent"]);
}

#[test]
fn a_public_buyer_debtor_is_a_professional_recipient() {
    let deposit = |recipient: &str| json!({"recipient": {"kind": recipient}, "compose": {"debtor": {"kind": "public_buyer"}}});
    assert!(request::kind_mismatch(&deposit("professional")).is_none());
    assert!(request::kind_mismatch(&deposit("consumer")).is_some());
}
