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

/// A trade-in price names a `sku` or a `category`, not both.
pub struct PriceNamesOneKey;

impl Modify for PriceNamesOneKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let Some(body) = components.schemas.remove("TradeInPrice") else {
            return;
        };
        let names = |given: &str, absent: &str| {
            ObjectBuilder::new()
                .property(
                    given,
                    ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)),
                )
                .property(
                    absent,
                    ObjectBuilder::new().schema_type(SchemaType::Type(Type::Null)),
                )
                .required(given)
                .build()
        };
        let one_key = OneOfBuilder::new()
            .item(names("sku", "category"))
            .item(names("category", "sku"))
            .build();
        let ruled = AllOfBuilder::new()
            .item(body)
            .item(Schema::OneOf(one_key))
            .build();
        components
            .schemas
            .insert("TradeInPrice".to_owned(), RefOr::T(Schema::AllOf(ruled)));
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
