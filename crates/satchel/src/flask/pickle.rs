//! Placeholder until the pickle codec lands.
#![allow(missing_docs, clippy::missing_errors_doc)]
use crate::error::StoreError;
use crate::record::Data;
pub fn decode(_bytes: &[u8]) -> Result<(Data, Option<bool>), StoreError> {
    Err(StoreError::decode("pickle is not read yet"))
}
pub fn encode(_data: &Data, _permanent: Option<bool>) -> Result<Vec<u8>, StoreError> {
    Err(StoreError::encode("pickle is not written yet"))
}
