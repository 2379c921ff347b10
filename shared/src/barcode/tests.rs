//! Tests through the public entry point: classification, input hygiene, the twelve-digit rule,
//! every error path of our own labels, and property tests.

use proptest::prelude::*;

use super::*;
use crate::domain::{Disposition, Grade, SiteId};

/// An independent GS1 mod-10 written from the specification's description (sum of digits at odd
/// positions from the right times 3, plus the others, rounded up to a multiple of ten), so the
/// tests do not only compare the implementation with itself.
fn gs1_check_oracle(body: &str) -> char {
    let digits: Vec<u32> = body.chars().map(|c| c.to_digit(10).unwrap()).collect();
    let mut odd = 0;
    let mut even = 0;
    for (i, d) in digits.iter().rev().enumerate() {
        if i % 2 == 0 {
            odd += d;
        } else {
            even += d;
        }
    }
    let total = odd * 3 + even;
    let next_ten = total.div_ceil(10) * 10;
    char::from_digit(next_ten - total, 10).unwrap()
}

fn with_gs1_check(body: &str) -> String {
    format!("{body}{}", gs1_check_oracle(body))
}

fn with_7dr(body: &str) -> String {
    format!("{body}{}", body.parse::<u64>().unwrap() % 7)
}

fn site(id: &str) -> SiteId {
    SiteId::new(id).unwrap()
}

fn product(scan: Scan) -> Gtin {
    match scan {
        Scan::Product(g) => g,
        other => panic!("not a product: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Classification of valid scans

#[test]
fn jan_ean8_upca_and_gtin14_are_products() {
    let g = product(parse("4901234567894").unwrap());
    assert_eq!((g.gtin14(), g.kind()), ("04901234567894", GtinKind::Ean13));
    assert!(g.is_jan());
    let g = product(parse("49123456").unwrap());
    assert_eq!((g.gtin14(), g.kind()), ("00000049123456", GtinKind::Ean8));
    let g = product(parse("012345678905").unwrap());
    assert_eq!((g.gtin14(), g.kind()), ("00012345678905", GtinKind::UpcA));
    let g = product(parse(&with_gs1_check("1490123456789")).unwrap());
    assert_eq!(g.kind(), GtinKind::Gtin14);
    assert_eq!(parse("4901234567894").unwrap().format(), Format::Ean13);
}

#[test]
fn a_wrong_gtin_check_digit_is_refused_for_every_length() {
    for body in ["490123456789", "4912345", "01234567890", "1490123456789"] {
        let good = with_gs1_check(body);
        let last = good.chars().last().unwrap();
        let bad_digit = char::from_digit((last.to_digit(10).unwrap() + 1) % 10, 10).unwrap();
        let bad = format!("{body}{bad_digit}");
        let err = parse_with(&bad, ParseOptions::default()).unwrap_err();
        match err {
            BarcodeError::CheckCharacter {
                expected, found, ..
            } => assert_eq!((expected, found), (last, bad_digit), "{bad}"),
            // 12 digits may also be read as a carrier slip.
            BarcodeError::TwelveDigits { upc_a, found, .. } => {
                assert_eq!((upc_a, found), (last, bad_digit), "{bad}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn gs1_element_strings_in_both_forms() {
    let fnc1 = format!("]C10104912345678904{GS}10LOT42{GS}21SN001\r\n");
    let bracketed = "(01)04912345678904(10)LOT42(21)SN001";
    let (Scan::Gs1(a), Scan::Gs1(b)) = (parse(&fnc1).unwrap(), parse(bracketed).unwrap()) else {
        panic!("not GS1");
    };
    assert_eq!(a, b);
    assert_eq!(a.gtin().unwrap().gtin14(), "04912345678904");
    assert_eq!(a.batch(), Some("LOT42"));
    assert_eq!(a.serial(), Some("SN001"));
    // The same message from other GS1 symbologies and with FNC1 sent as a leading GS.
    for prefix in ["]d2", "]Q3", "]e0", "\u{1D}"] {
        let data = format!("{prefix}0104912345678904{GS}10LOT42{GS}21SN001");
        assert_eq!(parse(&data).unwrap(), Scan::Gs1(a.clone()), "{prefix:?}");
    }
    assert_eq!(parse("]C1").unwrap_err(), BarcodeError::Gs1Empty);
    assert!(matches!(
        parse("]C1(01)04912345678904"),
        Err(BarcodeError::Gs1ExpectedAi { .. })
    ));
}

#[test]
fn own_labels_are_recognised() {
    let rma = rma_encode("0123456789").unwrap();
    assert_eq!(rma, "RMA-0123456789-L");
    let Scan::Rma(label) = parse(&rma).unwrap() else {
        panic!("not an RMA");
    };
    assert_eq!(label.body(), "0123456789");
    assert_eq!(label.rma().as_str(), rma);

    let lpn = lpn_encode(&site("osaka"), 0x00a3, 17).unwrap();
    assert!(lpn.as_str().starts_with("LPN-OSAKA-00A3-0000017"), "{lpn}");
    assert_eq!(lpn.as_str().len(), "LPN-OSAKA-00A3-0000017".len() + 1);
    let Scan::Lpn(label) = parse(lpn.as_str()).unwrap() else {
        panic!("not an LPN");
    };
    assert_eq!(label.lpn(), &lpn);
    assert_eq!(label.site_code(), "OSAKA");
    assert_eq!((label.generation(), label.counter()), (0x00a3, 17));
    assert!(label.is_from_site(&site("osaka")));
    assert!(!label.is_from_site(&site("sendai")));

    let card = command_encode(StationCommand::Grade(Grade::B));
    assert!(card.starts_with("CMD-GRADE-B-"), "{card}");
    assert_eq!(
        parse(&card).unwrap(),
        Scan::Command(StationCommand::Grade(Grade::B))
    );
    let card = command_encode(StationCommand::Dispose(Disposition::ReturnToVendor));
    assert!(card.starts_with("CMD-DISP-RTV-"), "{card}");

    let badge = badge_encode("0042").unwrap();
    let Scan::Badge(b) = parse(&badge).unwrap() else {
        panic!("not a badge");
    };
    assert_eq!(b.number(), "0042");
}

#[test]
fn the_check_characters_of_our_labels_follow_iso_7064_mod_37_36() {
    // python-stdnum's iso7064.mod_37_36.calc_check_digit("RMA0123456789") is "L".
    assert_eq!(rma_encode("0123456789").unwrap(), "RMA-0123456789-L");
    // Hyphens are not part of the check: the same characters give the same check.
    let lpn = lpn_encode(&site("a"), 0, 0).unwrap();
    let check = check::mod37_36(*b"LPNA00000000000").unwrap();
    assert_eq!(
        lpn.as_str(),
        format!("LPN-A-0000-0000000{}", char::from(check))
    );
}

#[test]
fn carrier_slips_are_tracking_numbers() {
    for slip in ["444413758703", "405548424886", "512547514334"] {
        let scan = parse_with(slip, ParseOptions::receiving_parcels()).unwrap();
        assert_eq!(
            scan,
            Scan::Tracking(TrackingNumber::Japan12(slip.into())),
            "{slip}"
        );
        assert_eq!(scan.format(), Format::CarrierSlip);
    }
    let Scan::Tracking(t) = parse("EJ123456785JP").unwrap() else {
        panic!("not tracking");
    };
    assert_eq!(t.possible_carriers(), &[Carrier::JapanPost]);
    assert_eq!(
        parse("EJ123456786JP").unwrap_err(),
        BarcodeError::CheckCharacter {
            format: Format::UpuS10,
            expected: '5',
            found: '6'
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Twelve digits

/// Finds 11 digits whose UPC-A and 7DR check digits are equal, so the 12 digits are both.
fn both_ways() -> String {
    (10_000_000_000u64..)
        .map(|n| n.to_string())
        .find(|b| with_gs1_check(b) == with_7dr(b))
        .unwrap()
}

#[test]
fn twelve_digits_valid_one_way_are_read_that_way_whatever_the_preference() {
    let upc_only = "012345678905";
    assert_ne!(with_7dr("01234567890"), upc_only);
    let slip_only = "444413758703";
    assert_ne!(with_gs1_check("44441375870"), slip_only);
    for options in [ParseOptions::default(), ParseOptions::receiving_parcels()] {
        assert_eq!(
            parse_with(upc_only, options).unwrap().format(),
            Format::UpcA
        );
        assert_eq!(
            parse_with(slip_only, options).unwrap().format(),
            Format::CarrierSlip
        );
    }
}

#[test]
fn twelve_digits_valid_both_ways_follow_the_station_preference() {
    // A Sagawa slip from a public sample set that is also a valid UPC-A: the case is real.
    let sagawa = "512547514334";
    assert_eq!(with_gs1_check("51254751433"), sagawa);
    assert_eq!(with_7dr("51254751433"), sagawa);
    assert_eq!(parse(sagawa).unwrap().format(), Format::UpcA);
    assert_eq!(
        parse_with(sagawa, ParseOptions::receiving_parcels())
            .unwrap()
            .format(),
        Format::CarrierSlip
    );
    let body = both_ways();
    let digits = with_7dr(&body);
    assert_eq!(digits, with_gs1_check(&body));
    assert_eq!(parse(&digits).unwrap().format(), Format::UpcA);
    assert_eq!(
        parse_with(&digits, ParseOptions::receiving_parcels())
            .unwrap()
            .format(),
        Format::CarrierSlip
    );
}

#[test]
fn twelve_digits_valid_neither_way_name_both_expected_digits() {
    // 1234567890 1: UPC-A expects 2, 7DR expects 12345678901 % 7 = 3; 9 fits neither.
    let err = parse("123456789019").unwrap_err();
    assert_eq!(
        err,
        BarcodeError::TwelveDigits {
            digits: "123456789019".into(),
            found: '9',
            upc_a: gs1_check_oracle("12345678901"),
            carrier_slip: '3'
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "12 digits 123456789019: check digit 9 fits neither UPC-A (expects {}) nor a \
             carrier slip (expects 3)",
            gs1_check_oracle("12345678901")
        )
    );
}

#[test]
fn the_symbology_identifier_settles_twelve_digits() {
    let body = both_ways();
    let digits = with_7dr(&body);
    // From a UPC-A symbol it is a product even at a parcel station...
    assert_eq!(
        parse_with(&format!("]E0{digits}"), ParseOptions::receiving_parcels())
            .unwrap()
            .format(),
        Format::UpcA
    );
    // ...and from Codabar it is a slip even at a product station.
    assert_eq!(
        parse(&format!("]F0{digits}")).unwrap().format(),
        Format::CarrierSlip
    );
    // A valid UPC-A printed in Code 128 is not a GS1 product, and it is not a valid slip.
    assert_eq!(
        parse("]C0012345678905").unwrap_err(),
        BarcodeError::CheckCharacter {
            format: Format::CarrierSlip,
            expected: char::from(check::seven_dr(b"01234567890")),
            found: '5'
        }
    );
    // A slip inside an EAN/UPC symbol cannot happen; it is checked as a UPC-A.
    assert!(matches!(
        parse("]E0444413758703"),
        Err(BarcodeError::CheckCharacter {
            format: Format::UpcA,
            ..
        })
    ));
}

#[test]
fn ean_upc_symbologies_carry_gtins_only() {
    assert_eq!(
        product(parse("]E04901234567894").unwrap()).kind(),
        GtinKind::Ean13
    );
    assert_eq!(
        product(parse("]E0012345678905").unwrap()).kind(),
        GtinKind::UpcA
    );
    assert_eq!(
        product(parse("]E449123456").unwrap()).kind(),
        GtinKind::Ean8
    );
    assert_eq!(
        parse("]E001234565").unwrap_err(),
        BarcodeError::UnexpandedUpcE {
            digits: "01234565".into()
        }
    );
    assert_eq!(
        parse("]E44901234567894").unwrap_err(),
        BarcodeError::DigitCount { len: 13 }
    );
    assert!(matches!(
        parse("]E0RMA-0123456789-L"),
        Err(BarcodeError::BadCharacter { ch: 'R', .. })
    ));
}

#[test]
fn plain_symbologies_pass_their_data_through() {
    let rma = rma_encode("ABCDEFGHIJ").unwrap();
    assert!(matches!(parse(&format!("]C0{rma}")), Ok(Scan::Rma(_))));
    assert!(matches!(parse(&format!("]A0{rma}")), Ok(Scan::Rma(_))));
    assert!(matches!(
        parse(&format!("]I0{}", with_gs1_check("1490123456789"))),
        Ok(Scan::Product(_))
    ));
    assert_eq!(parse("]C0").unwrap_err(), BarcodeError::Empty);
}

// ---------------------------------------------------------------------------------------------
// Input hygiene

#[test]
fn line_endings_are_trimmed() {
    for input in ["4901234567894\n", "4901234567894\r\n", "4901234567894\r"] {
        assert_eq!(parse(input).unwrap().format(), Format::Ean13, "{input:?}");
    }
}

#[test]
fn empty_and_over_long_scans_are_refused() {
    assert_eq!(parse("").unwrap_err(), BarcodeError::Empty);
    assert_eq!(parse("\r\n").unwrap_err(), BarcodeError::Empty);
    let long = "1".repeat(MAX_SCAN_BYTES + 1);
    assert_eq!(
        parse(&long).unwrap_err(),
        BarcodeError::TooLong {
            len: MAX_SCAN_BYTES + 1
        }
    );
    // Exactly the limit is examined (and here refused for its content, not its length).
    assert_eq!(
        parse(&"1".repeat(MAX_SCAN_BYTES)).unwrap_err(),
        BarcodeError::DigitCount {
            len: MAX_SCAN_BYTES
        }
    );
    assert_eq!(
        parse(&long).unwrap_err().to_string(),
        "scan is 129 bytes, longer than the 128 accepted"
    );
}

#[test]
fn control_characters_are_refused_with_their_position() {
    assert_eq!(
        parse("4901\t234567894").unwrap_err(),
        BarcodeError::ControlCharacter {
            position: 5,
            code: 0x09
        }
    );
    assert_eq!(
        parse("\n4901234567894").unwrap_err(),
        BarcodeError::ControlCharacter {
            position: 1,
            code: 0x0A
        }
    );
    assert_eq!(
        parse("49012345\r67894").unwrap_err().to_string(),
        "control character 0x0d at position 9"
    );
    assert!(matches!(
        parse("RMA-0123456789-L\u{7f}"),
        Err(BarcodeError::ControlCharacter { code: 0x7F, .. })
    ));
}

#[test]
fn gs_is_allowed_only_in_a_gs1_message() {
    assert_eq!(
        parse(&format!("RMA-0123{GS}456789-L")).unwrap_err(),
        BarcodeError::ControlCharacter {
            position: 9,
            code: 0x1D
        }
    );
    // After a plain symbology identifier the position still counts from the scan's start.
    assert_eq!(
        parse(&format!("]C0AB{GS}")).unwrap_err(),
        BarcodeError::ControlCharacter {
            position: 6,
            code: 0x1D
        }
    );
    assert!(matches!(
        parse(&format!("(10)A{GS}B")),
        Err(BarcodeError::ControlCharacter { code: 0x1D, .. })
    ));
}

#[test]
fn full_width_and_other_non_ascii_characters_are_refused() {
    assert_eq!(
        parse("４９01234567894").unwrap_err(),
        BarcodeError::FullWidth {
            position: 1,
            ch: '４'
        }
    );
    assert!(matches!(
        parse("RMA\u{3000}"),
        Err(BarcodeError::FullWidth { position: 4, .. })
    ));
    assert_eq!(
        parse("RMA-é").unwrap_err(),
        BarcodeError::NonAscii {
            position: 5,
            ch: 'é'
        }
    );
    assert!(parse("４９")
        .unwrap_err()
        .to_string()
        .contains("half-width"));
}

#[test]
fn unknown_symbologies_and_formats_are_named() {
    assert_eq!(
        parse("]X9123").unwrap_err(),
        BarcodeError::UnknownSymbology { id: "]X9".into() }
    );
    assert_eq!(
        parse("]C").unwrap_err(),
        BarcodeError::UnknownSymbology { id: "]C".into() }
    );
    assert_eq!(
        parse("hello").unwrap_err(),
        BarcodeError::UnknownFormat {
            text: "hello".into()
        }
    );
    assert_eq!(
        parse("rma-0123456789-L").unwrap_err().to_string(),
        "unrecognised barcode \"rma-0123456789-L\""
    );
    assert_eq!(
        parse("4901234567894 ").unwrap_err(),
        BarcodeError::UnknownFormat {
            text: "4901234567894 ".into()
        }
    );
    for len in [1, 7, 9, 10, 11, 15, 18] {
        assert_eq!(
            parse(&"0".repeat(len)).unwrap_err(),
            BarcodeError::DigitCount { len }
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Error paths of our own labels

#[test]
fn rma_errors() {
    let cases: &[(&str, BarcodeError)] = &[
        (
            "RMA-0123456789",
            BarcodeError::Shape {
                format: Format::Rma,
                expected: "RMA-<10 letters or digits>-<check>",
            },
        ),
        (
            "RMA-012345678-L",
            BarcodeError::Length {
                format: Format::Rma,
                part: "body",
                min: 10,
                max: 10,
                found: 9,
            },
        ),
        (
            "RMA-01234a6789-L",
            BarcodeError::BadCharacter {
                format: Format::Rma,
                part: "body",
                ch: 'a',
                allowed: "A-Z 0-9",
            },
        ),
        (
            "RMA-01234-6789-L",
            BarcodeError::BadCharacter {
                format: Format::Rma,
                part: "body",
                ch: '-',
                allowed: "A-Z 0-9",
            },
        ),
        (
            "RMA-0123456789-LL",
            BarcodeError::Length {
                format: Format::Rma,
                part: "check character",
                min: 1,
                max: 1,
                found: 2,
            },
        ),
        (
            "RMA-0123456789-",
            BarcodeError::Length {
                format: Format::Rma,
                part: "check character",
                min: 1,
                max: 1,
                found: 0,
            },
        ),
        (
            "RMA-0123456789-l",
            BarcodeError::BadCharacter {
                format: Format::Rma,
                part: "check character",
                ch: 'l',
                allowed: "A-Z 0-9",
            },
        ),
        (
            "RMA-0123456789-M",
            BarcodeError::CheckCharacter {
                format: Format::Rma,
                expected: 'L',
                found: 'M',
            },
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(&parse(input).unwrap_err(), expected, "{input}");
    }
    assert_eq!(
        parse("RMA-0123456789-M").unwrap_err().to_string(),
        "RMA: check character should be L, found M"
    );
    assert!(matches!(
        rma_encode("0123"),
        Err(BarcodeError::Length { found: 4, .. })
    ));
    assert!(matches!(
        rma_encode("abcdefghij"),
        Err(BarcodeError::BadCharacter { ch: 'a', .. })
    ));
}

#[test]
fn lpn_errors() {
    let good = lpn_encode(&site("osaka"), 0xBEEF, 1234).unwrap();
    let good = good.as_str();
    let check = good.chars().last().unwrap();
    let other = if check == 'Z' { 'Y' } else { 'Z' };
    let shape = || BarcodeError::Shape {
        format: Format::Lpn,
        expected: "LPN-<site>-<generation>-<counter><check>",
    };
    let len = |part, min, max, found| BarcodeError::Length {
        format: Format::Lpn,
        part,
        min,
        max,
        found,
    };
    let bad = |part, ch, allowed| BarcodeError::BadCharacter {
        format: Format::Lpn,
        part,
        ch,
        allowed,
    };
    let mut cases: Vec<(String, BarcodeError)> = vec![
        ("LPN-OSAKA-BEEF".into(), shape()),
        (format!("LPN-NEW-YORK-BEEF-0001234{check}"), shape()),
        (
            format!("LPN--BEEF-0001234{check}"),
            len("site code", 1, 33, 0),
        ),
        (
            format!("LPN-{}-BEEF-0001234{check}", "A".repeat(34)),
            len("site code", 1, 33, 34),
        ),
        (
            format!("LPN-Osaka-BEEF-0001234{check}"),
            bad("site code", 's', "A-Z 0-9"),
        ),
        (
            format!("LPN-OSAKA-BEE-0001234{check}"),
            len("generation", 4, 4, 3),
        ),
        (
            format!("LPN-OSAKA-beef-0001234{check}"),
            bad("generation", 'b', "0-9 A-F"),
        ),
        (
            format!("LPN-OSAKA-BEEG-0001234{check}"),
            bad("generation", 'G', "0-9 A-F"),
        ),
        (
            "LPN-OSAKA-BEEF-".into(),
            BarcodeError::MissingCheck {
                format: Format::Lpn,
            },
        ),
        (
            format!("LPN-OSAKA-BEEF-001234{check}"),
            len("counter", 7, 20, 6),
        ),
        (
            format!("LPN-OSAKA-BEEF-000A234{check}"),
            bad("counter", 'A', "0-9"),
        ),
        (
            format!("LPN-OSAKA-BEEF-00001234{check}"),
            BarcodeError::LpnCounterNotCanonical {
                digits: "00001234".into(),
            },
        ),
        (
            format!("LPN-OSAKA-BEEF-99999999999999999999{check}"),
            BarcodeError::LpnCounterTooLarge {
                digits: "99999999999999999999".into(),
            },
        ),
        (
            format!("LPN-OSAKA-BEEF-0001234{other}"),
            BarcodeError::CheckCharacter {
                format: Format::Lpn,
                expected: check,
                found: other,
            },
        ),
    ];
    if check.is_ascii_alphabetic() {
        let lower = check.to_ascii_lowercase();
        cases.push((
            format!("LPN-OSAKA-BEEF-0001234{lower}"),
            bad("check character", lower, "A-Z 0-9"),
        ));
    }
    assert_eq!(good, format!("LPN-OSAKA-BEEF-0001234{check}"));
    for (input, expected) in cases {
        assert_eq!(parse(&input).unwrap_err(), expected, "{input}");
    }
    // The largest counter fits, one more digit does not.
    let max = lpn_encode(&site("osaka"), 0, u64::MAX).unwrap();
    let Scan::Lpn(label) = parse(max.as_str()).unwrap() else {
        panic!("not an LPN");
    };
    assert_eq!(label.counter(), u64::MAX);
}

#[test]
fn lpn_site_codes() {
    assert_eq!(lpn_site_code(&site("rogue-site")), "ROGUESITE");
    let lpn = lpn_encode(&site("rogue-site"), 1, 2).unwrap();
    let Scan::Lpn(label) = parse(lpn.as_str()).unwrap() else {
        panic!("not an LPN");
    };
    assert!(label.is_from_site(&site("rogue-site")));
    assert_eq!(
        lpn_encode(&site("---"), 0, 0).unwrap_err(),
        BarcodeError::Length {
            format: Format::Lpn,
            part: "site code",
            min: 1,
            max: LPN_SITE_CODE_LEN_MAX,
            found: 0
        }
    );
    let longest = "a".repeat(LPN_SITE_CODE_LEN_MAX);
    let lpn = lpn_encode(&site(&longest), u16::MAX, u64::MAX).unwrap();
    assert_eq!(lpn.as_str().len(), crate::domain::ID_LEN_MAX);
    assert!(matches!(
        lpn_encode(&site(&format!("{longest}a")), 0, 0),
        Err(BarcodeError::Length { found: 34, .. })
    ));
}

#[test]
fn command_card_errors() {
    let done = command_encode(StationCommand::Done);
    let check = done.chars().last().unwrap();
    let other = if check == 'Z' { 'Y' } else { 'Z' };
    assert_eq!(
        parse("CMD-DONE").unwrap_err(),
        BarcodeError::MissingCheck {
            format: Format::Command
        }
    );
    assert_eq!(
        parse("CMD-GRADE-A").unwrap_err().to_string(),
        "command card: no check character"
    );
    assert_eq!(
        parse("CMD-FINISH").unwrap_err(),
        BarcodeError::Shape {
            format: Format::Command,
            expected: "CMD-<command>-<check>"
        }
    );
    assert_eq!(
        parse("CMD-GRADE-Q-7").unwrap_err(),
        BarcodeError::UnknownCommand {
            name: "GRADE-Q".into()
        }
    );
    assert_eq!(
        parse(&format!("CMD-DONE-{other}")).unwrap_err(),
        BarcodeError::CheckCharacter {
            format: Format::Command,
            expected: check,
            found: other
        }
    );
    assert!(matches!(
        parse("CMD-DONE-"),
        Err(BarcodeError::Length { found: 0, .. })
    ));
}

#[test]
fn badge_errors() {
    let good = badge_encode("12345678").unwrap();
    let check = good.chars().last().unwrap();
    let other = if check == 'Z' { 'Y' } else { 'Z' };
    assert_eq!(
        parse("BADGE-").unwrap_err(),
        BarcodeError::MissingCheck {
            format: Format::Badge
        }
    );
    assert_eq!(
        parse(&format!("BADGE-123{check}")).unwrap_err(),
        BarcodeError::Length {
            format: Format::Badge,
            part: "number",
            min: BADGE_DIGITS_MIN,
            max: BADGE_DIGITS_MAX,
            found: 3
        }
    );
    assert!(matches!(
        parse(&format!("BADGE-123456789{check}")),
        Err(BarcodeError::Length { found: 9, .. })
    ));
    assert!(matches!(
        parse(&format!("BADGE-12A45678{check}")),
        Err(BarcodeError::BadCharacter { ch: 'A', .. })
    ));
    assert_eq!(
        parse(&format!("BADGE-12345678{other}")).unwrap_err(),
        BarcodeError::CheckCharacter {
            format: Format::Badge,
            expected: check,
            found: other
        }
    );
    assert!(matches!(
        badge_encode("123"),
        Err(BarcodeError::Length { .. })
    ));
    assert!(matches!(
        badge_encode("12a4"),
        Err(BarcodeError::BadCharacter { .. })
    ));
}

#[test]
fn japan12_encode_makes_slips_that_parse() {
    let slip = japan12_encode("12345678901").unwrap();
    assert_eq!(
        parse_with(&slip, ParseOptions::receiving_parcels()).unwrap(),
        Scan::Tracking(TrackingNumber::Japan12(slip.clone()))
    );
    assert_eq!(japan12_encode("1234"), None);
    assert_eq!(japan12_encode("1234567890a"), None);
}

#[test]
fn bin_errors() {
    let good = bin_encode("A0103").unwrap();
    let Scan::Bin(label) = parse(&good).unwrap() else {
        panic!("{good}")
    };
    assert_eq!(label.bin().as_str(), "A0103");
    let check = good.chars().last().unwrap();
    let other = if check == 'Z' { 'Y' } else { 'Z' };
    assert_eq!(
        parse("BIN-A0103").unwrap_err(),
        BarcodeError::Shape {
            format: Format::Bin,
            expected: "BIN-<code>-<check>"
        }
    );
    assert_eq!(
        parse(&format!("BIN-A0103-{other}")).unwrap_err(),
        BarcodeError::CheckCharacter {
            format: Format::Bin,
            expected: check,
            found: other
        }
    );
    assert!(matches!(
        parse(&format!("BIN-a0103-{check}")),
        Err(BarcodeError::BadCharacter { ch: 'a', .. })
    ));
    assert!(matches!(
        parse(&format!("BIN--{check}")),
        Err(BarcodeError::Length { found: 0, .. })
    ));
    assert!(matches!(
        bin_encode(&"A".repeat(BIN_CODE_LEN_MAX + 1)),
        Err(BarcodeError::Length { .. })
    ));
    assert!(matches!(
        bin_encode("A-1"),
        Err(BarcodeError::BadCharacter { ch: '-', .. })
    ));
}

/// Every printable ASCII character, GS, and a few others a scanner could send.
fn substitutes() -> impl Iterator<Item = char> {
    (0x20u8..0x7F).map(char::from).chain([GS, '\t', 'é', '５'])
}

#[test]
fn no_single_substitution_turns_a_command_card_into_anything() {
    for command in StationCommand::ALL {
        let card = command_encode(command);
        assert_eq!(parse(&card).unwrap(), Scan::Command(command), "{card}");
        for (i, original) in card.char_indices() {
            for sub in substitutes().filter(|c| *c != original) {
                let mut damaged = card.clone();
                damaged.replace_range(i..i + 1, &sub.to_string());
                assert!(
                    parse(&damaged).is_err(),
                    "{card} with {sub:?} at {i} read as {:?}",
                    parse(&damaged)
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

fn site_id() -> impl Strategy<Value = SiteId> {
    "[a-z0-9][a-z0-9-]{0,30}".prop_map(|s| SiteId::new(s).unwrap())
}

/// One of our own labels, freshly encoded.
fn own_label() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z0-9]{10}".prop_map(|b| rma_encode(&b).unwrap()),
        (site_id(), any::<u16>(), any::<u64>())
            .prop_map(|(s, g, n)| lpn_encode(&s, g, n).unwrap().as_str().to_owned()),
        proptest::sample::select(StationCommand::ALL.to_vec()).prop_map(command_encode),
        "[0-9]{4,8}".prop_map(|n| badge_encode(&n).unwrap()),
        "[A-Z0-9]{1,12}".prop_map(|c| bin_encode(&c).unwrap()),
        "[A-Z0-9]{10}".prop_map(|b| tote_encode(&b).unwrap()),
    ]
}

proptest! {
    #[test]
    fn rma_round_trips(body in "[A-Z0-9]{10}") {
        let text = rma_encode(&body).unwrap();
        let Ok(Scan::Rma(label)) = parse(&text) else { panic!("{text}") };
        prop_assert_eq!(label.body(), body.as_str());
        prop_assert_eq!(label.rma().as_str(), text.as_str());
    }

    #[test]
    fn lpn_round_trips(site in site_id(), generation in any::<u16>(), n in any::<u64>()) {
        let lpn = lpn_encode(&site, generation, n).unwrap();
        let Ok(Scan::Lpn(label)) = parse(lpn.as_str()) else { panic!("{lpn}") };
        prop_assert_eq!(label.lpn(), &lpn);
        prop_assert_eq!(label.generation(), generation);
        prop_assert_eq!(label.counter(), n);
        prop_assert!(label.is_from_site(&site));
        prop_assert_eq!(label.site_code(), lpn_site_code(&site));
    }

    #[test]
    fn badge_round_trips(number in "[0-9]{4,8}") {
        let text = badge_encode(&number).unwrap();
        let Ok(Scan::Badge(badge)) = parse(&text) else { panic!("{text}") };
        prop_assert_eq!(badge.number(), number.as_str());
    }

    #[test]
    fn command_cards_round_trip(command in proptest::sample::select(StationCommand::ALL.to_vec())) {
        prop_assert_eq!(parse(&command_encode(command)).unwrap(), Scan::Command(command));
    }

    #[test]
    fn a_single_substitution_in_our_labels_is_detected(
        label in own_label(),
        index in any::<proptest::sample::Index>(),
        sub in prop_oneof![
            (0x20u8..0x7F).prop_map(char::from),
            Just(GS),
            Just('\t'),
            Just('ａ'),
        ],
    ) {
        let i = index.index(label.len());
        let original = label.as_bytes()[i] as char;
        prop_assume!(sub != original);
        let mut damaged = label.clone();
        damaged.replace_range(i..i + 1, &sub.to_string());
        prop_assert!(parse(&damaged).is_err(), "{} -> {:?} read as {:?}", label, damaged, parse(&damaged));
    }

    #[test]
    fn gtins_with_the_published_check_digit_parse_and_others_do_not(
        body in "[0-9]{12}",
        wrong in 1u32..10,
    ) {
        let good = with_gs1_check(&body);
        let g = product(parse(&good).unwrap());
        prop_assert_eq!(g.gtin14(), format!("0{good}"));
        let last = good.chars().last().unwrap().to_digit(10).unwrap();
        let bad = format!("{body}{}", (last + wrong) % 10);
        prop_assert!(
            matches!(parse(&bad), Err(BarcodeError::CheckCharacter { format: Format::Ean13, .. })),
            "{}", bad
        );
    }

    #[test]
    fn s10_numbers_with_the_published_check_digit_parse(
        service in "[A-Z]{2}",
        serial in "[0-9]{8}",
        country in "[A-Z]{2}",
    ) {
        let weights = [8, 6, 4, 2, 3, 5, 9, 7];
        let sum: u32 = serial.chars().zip(weights).map(|(c, w)| c.to_digit(10).unwrap() * w).sum();
        let check = match 11 - sum % 11 { 10 => 0, 11 => 5, c => c };
        let number = format!("{service}{serial}{check}{country}");
        prop_assert_eq!(
            parse(&number).unwrap(),
            Scan::Tracking(TrackingNumber::UpuS10(number.clone()))
        );
        let wrong = format!("{service}{serial}{}{country}", (check + 1) % 10);
        prop_assert!(parse(&wrong).is_err());
    }

    #[test]
    fn parse_never_panics(input in "\\PC{0,140}") {
        let _ = parse(&input);
        let _ = parse_with(&input, ParseOptions::receiving_parcels());
    }

    #[test]
    fn parse_never_panics_on_near_misses(
        input in "(\\]C1|\\]E0|\\(|RMA-|LPN-|CMD-|BADGE-)?[0-9A-Z()\\-\u{1d}]{0,40}",
    ) {
        let _ = parse(&input);
    }
}

#[test]
fn ean13_complete_appends_the_check_digit_that_parse_accepts() {
    let code = super::ean13_complete("490123456789").unwrap();
    assert_eq!(code, "4901234567894");
    assert!(matches!(super::parse(&code), Ok(super::Scan::Product(_))));
    assert!(super::ean13_complete("49012345678").is_err());
    assert!(super::ean13_complete("49012345678X").is_err());
}
