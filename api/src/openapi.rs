//! Hand-written OpenAPI schemas for the few shapes utoipa's derive cannot describe:
//! maps whose values may be `null`.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};

/// `{"KEY": "value" | null}`: environment variables and build arguments (`null`: set
/// to nothing).
pub fn nullable_string_map() -> RefOr<Schema> {
    let value = ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null]));
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Object))
        .additional_properties(Some(value))
        .into()
}

/// `{"network": {...} | null}`: a service's networks (`null`: attached with defaults).
pub fn service_networks() -> RefOr<Schema> {
    let value = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(SchemaType::Type(Type::Null)))
        .item(<crate::service::ServiceNetwork as utoipa::PartialSchema>::schema())
        .build();
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Object))
        .additional_properties(Some(Schema::OneOf(value)))
        .into()
}
