//! Rules of the API document that span fields, which the schema derives cannot state: added to
//! the generated document so that it refuses exactly what the handlers refuse.

use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema,
    SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::RefOr;
use utoipa::Modify;

/// Bodies that carry `resolution` and `exchange_sku`.
const RESOLUTION_BODIES: [&str; 2] = ["NewReturn", "StoreReturn"];

/// An exchange names the SKU wanted (`exchange_sku`), and only an exchange does.
pub struct ExchangeNamesSku;

impl Modify for ExchangeNamesSku {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for name in RESOLUTION_BODIES {
            if let Some(body) = components.schemas.remove(name) {
                let ruled = AllOfBuilder::new()
                    .item(body)
                    .item(exchange_rule())
                    .item(order_date_rule())
                    .build();
                components
                    .schemas
                    .insert(name.to_owned(), RefOr::T(Schema::AllOf(ruled)));
            }
        }
    }
}

/// Each form of an origin takes only its own fields (the untagged enum's variants are not
/// derived with `additionalProperties: false`, though the handler refuses any other field).
pub struct OriginFormsAreClosed;

impl Modify for OriginFormsAreClosed {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        if let Some(RefOr::T(Schema::OneOf(forms))) = components.schemas.get_mut("Origin") {
            for form in &mut forms.items {
                if let RefOr::T(Schema::Object(o)) = form {
                    o.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
                }
            }
        }
    }
}

/// A trade-in price and a repaired product name a `sku` or a `category`, not both; a repair
/// rate names one of them or neither (any product), never both.
pub struct PriceNamesOneKey;

/// Bodies that name exactly one of `sku` and `category`.
const ONE_KEY_BODIES: [&str; 2] = ["TradeInPrice", "RepairProduct"];
/// Bodies that name at most one of them.
const AT_MOST_ONE_KEY_BODIES: [&str; 1] = ["RepairRateBody"];

impl Modify for PriceNamesOneKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let typed = |t: Type| ObjectBuilder::new().schema_type(SchemaType::Type(t));
        let names = |given: &str, absent: &str| {
            ObjectBuilder::new()
                .property(given, typed(Type::String))
                .property(absent, typed(Type::Null))
                .required(given)
                .build()
        };
        let neither = ObjectBuilder::new()
            .property("sku", typed(Type::Null))
            .property("category", typed(Type::Null))
            .build();
        let bodies = ONE_KEY_BODIES
            .iter()
            .map(|b| (*b, false))
            .chain(AT_MOST_ONE_KEY_BODIES.iter().map(|b| (*b, true)));
        for (name, may_name_neither) in bodies {
            let Some(body) = components.schemas.remove(name) else {
                continue;
            };
            let mut keys = OneOfBuilder::new()
                .item(names("sku", "category"))
                .item(names("category", "sku"));
            if may_name_neither {
                keys = keys.item(neither.clone());
            }
            let ruled = AllOfBuilder::new()
                .item(body)
                .item(Schema::OneOf(keys.build()))
                .build();
            components
                .schemas
                .insert(name.to_owned(), RefOr::T(Schema::AllOf(ruled)));
        }
    }
}

/// `order_date` is a date (Japan) or an RFC 3339 time.
fn order_date_rule() -> Schema {
    let formatted = |format: KnownFormat| {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    let forms = OneOfBuilder::new()
        .item(formatted(KnownFormat::Date))
        .item(formatted(KnownFormat::DateTime))
        .item(ObjectBuilder::new().schema_type(SchemaType::Type(Type::Null)));
    Schema::Object(ObjectBuilder::new().property("order_date", forms).build())
}

fn exchange_rule() -> Schema {
    let string = |pattern: &str| {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .pattern(Some(pattern))
            .build()
    };
    let exchange = ObjectBuilder::new()
        .property("resolution", string("^exchange$"))
        .property("exchange_sku", string("^[A-Z0-9._-]{1,64}$"))
        .required("resolution")
        .required("exchange_sku")
        .build();
    let other = ObjectBuilder::new()
        .property(
            "resolution",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                .pattern(Some("^(refund|store_credit)$")),
        )
        .property(
            "exchange_sku",
            ObjectBuilder::new().schema_type(SchemaType::Type(Type::Null)),
        )
        .build();
    Schema::OneOf(OneOfBuilder::new().item(exchange).item(other).build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_trade_in_price_names_a_sku_or_a_category() {
        let doc = serde_json::to_value(super::super::openapi()).expect("serialises");
        let price = &doc["components"]["schemas"]["TradeInPrice"];
        let rule = &price["allOf"][1]["oneOf"];
        assert_eq!(rule[0]["required"], serde_json::json!(["sku"]), "{price}");
        assert_eq!(
            rule[1]["required"],
            serde_json::json!(["category"]),
            "{price}"
        );
        assert_eq!(rule[0]["properties"]["category"]["type"], "null", "{price}");
        assert_eq!(
            rule[1]["properties"]["category"]["type"], "string",
            "{price}"
        );
    }

    #[test]
    fn a_repair_rate_names_a_sku_a_category_or_neither() {
        let doc = serde_json::to_value(super::super::openapi()).expect("serialises");
        let product = &doc["components"]["schemas"]["RepairProduct"]["allOf"][1]["oneOf"];
        assert_eq!(product.as_array().map(Vec::len), Some(2), "{product}");
        let rate = &doc["components"]["schemas"]["RepairRateBody"]["allOf"][1]["oneOf"];
        assert_eq!(rate.as_array().map(Vec::len), Some(3), "{rate}");
        assert_eq!(rate[2]["properties"]["sku"]["type"], "null", "{rate}");
        assert!(rate[2]["required"].is_null(), "{rate}");
    }

    #[test]
    fn both_bodies_say_an_exchange_names_its_sku() {
        let doc = serde_json::to_value(super::super::openapi()).expect("serialises");
        for name in super::RESOLUTION_BODIES {
            let rule = &doc["components"]["schemas"][name]["allOf"][1]["oneOf"];
            assert_eq!(
                rule[0]["required"],
                serde_json::json!(["resolution", "exchange_sku"]),
                "{name}"
            );
            assert_eq!(
                rule[1]["properties"]["exchange_sku"]["type"], "null",
                "{name}"
            );
        }
        for form in doc["components"]["schemas"]["Origin"]["oneOf"]
            .as_array()
            .expect("origin forms")
        {
            assert_eq!(form["additionalProperties"], false, "{form}");
        }
    }
}
