//! Status conditions (`metav1.Condition`) the way Kubernetes controllers maintain them.

use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};

/// Sets the condition of type `type_` in `conditions`, keeping its `lastTransitionTime` when
/// its status does not change. Returns whether anything changed.
///
/// ```
/// use liqo_core::runtime::set_condition;
///
/// let mut conditions = Vec::new();
/// assert!(set_condition(&mut conditions, "Ready", true, "Allocated", "10.1.0.0/16", Some(1)));
/// let first = conditions[0].last_transition_time.clone();
/// // Same status, new message: the transition time stays.
/// assert!(set_condition(&mut conditions, "Ready", true, "Allocated", "again", Some(1)));
/// assert_eq!(conditions[0].last_transition_time, first);
/// assert_eq!(conditions[0].message, "again");
/// // Nothing new: nothing changes.
/// assert!(!set_condition(&mut conditions, "Ready", true, "Allocated", "again", Some(1)));
/// ```
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
) -> bool {
    let status = if status { "True" } else { "False" };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c)
            if c.status == status
                && c.reason == reason
                && c.message == message
                && c.observed_generation == observed_generation =>
        {
            false
        }
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Time(Timestamp::now());
            }
            c.status = status.to_owned();
            c.reason = reason.to_owned();
            c.message = message.to_owned();
            c.observed_generation = observed_generation;
            true
        }
        None => {
            conditions.push(Condition {
                type_: type_.to_owned(),
                status: status.to_owned(),
                reason: reason.to_owned(),
                message: message.to_owned(),
                observed_generation,
                last_transition_time: Time(Timestamp::now()),
            });
            true
        }
    }
}

/// Whether the condition of type `type_` is present with status `True`.
pub fn is_condition_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}
