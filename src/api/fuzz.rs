//! Property-based fuzzing of the request parsers and the WebSocket protocol decoder: any
//! bytes, and any JSON shaped like the real messages, give a value or a clean 400, never a
//! panic.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::extract::parse_json;
use super::orders::{PlaceOrder, RateOrder, UpdateOrder};
use super::riders::{LocationInput, SetStatus};
use super::ws::ClientMessage;

/// Cases per property (the figure quoted in the README).
pub const CASES: u32 = 4_096;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z_.]{0,12}".prop_map(Value::from),
        "[0-9a-f-]{36}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::hash_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("lat".to_owned()),
                    Just("lng".to_owned()),
                    Just("order_id".to_owned()),
                    Just("items".to_owned()),
                    Just("quantity".to_owned()),
                    Just("unit_price_cents".to_owned()),
                    Just("item_id".to_owned()),
                    Just("delivery".to_owned()),
                    Just("location".to_owned()),
                    "[a-z]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every parser either yields a value or a 400 with a message.
fn all_parsers(bytes: &[u8]) {
    fn check<T: serde::de::DeserializeOwned>(bytes: &[u8]) {
        if let Err(e) = parse_json::<T>(bytes) {
            assert_eq!((e.status.as_u16(), e.code), (400, "invalid_request"));
            assert!(!e.message.is_empty());
        }
    }
    check::<PlaceOrder>(bytes);
    check::<UpdateOrder>(bytes);
    check::<RateOrder>(bytes);
    check::<SetStatus>(bytes);
    check::<LocationInput>(bytes);
    check::<ClientMessage>(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_a_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        all_parsers(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics_a_parser_or_a_validator(v in json_value()) {
        let bytes = v.to_string().into_bytes();
        all_parsers(&bytes);
        if let Ok(order) = parse_json::<PlaceOrder>(&bytes) {
            let _ = super::orders::validate_items(&order.items);
        }
        if let Ok(ClientMessage::Location { lat, lng }) = parse_json::<ClientMessage>(&bytes) {
            let _ = crate::domain::LatLng::parse(lat, lng);
        }
    }

    #[test]
    fn websocket_frames_shaped_like_the_protocol_decode_or_fail_cleanly(
        kind in prop_oneof![Just("location".to_owned()), Just("accept".to_owned()), Just("reject".to_owned()), "[a-z.]{0,10}"],
        lat in any::<f64>(), lng in any::<f64>(), id in "[0-9a-f-]{0,40}",
    ) {
        for frame in [
            json!({"type": kind, "lat": lat, "lng": lng}),
            json!({"type": kind, "order_id": id}),
            json!({"type": kind}),
        ] {
            let bytes = frame.to_string().into_bytes();
            match parse_json::<ClientMessage>(&bytes) {
                Ok(ClientMessage::Location { lat, lng }) => { let _ = crate::domain::LatLng::parse(lat, lng); }
                Ok(_) => {}
                Err(e) => prop_assert_eq!(e.code, "invalid_request"),
            }
        }
    }
}

#[test]
fn huge_numbers_are_a_400_never_an_overflow() {
    // Quantities beyond u32 and prices beyond i64 are refused by the parser, not wrapped.
    let body = br#"{"restaurant_id":"00000000-0000-0000-0000-000000000000","items":[{"item_id":"00000000-0000-4000-8000-0000000000aa","quantity":4294967296,"unit_price_cents":1}],"delivery":{"location":{"lat":1,"lng":1},"address":"a"}}"#;
    assert_eq!(
        parse_json::<PlaceOrder>(body).err().map(|e| e.code),
        Some("invalid_request")
    );
    let body = br#"{"type":"location","lat":1e400,"lng":0}"#;
    assert!(parse_json::<ClientMessage>(body).is_err());
}
