use crate::diagnostic::{Applicability, Diagnostic};
use crate::rules::{LocationModel, declare_rule, remove_advice};

declare_rule! {
    /// ## What it does
    /// Finds `proxy_set_header <name> "";` (or an empty value in the `proxy-set-headers`
    /// ConfigMap) for a header ingress-nginx sets in the same location.
    ///
    /// ## Why is this bad?
    /// The nginx docs say a header with an empty value "will not be passed", which reads like a
    /// way to remove a header. It only drops *this* line: the controller's own
    /// `proxy_set_header` line for the same name is still sent
    /// ([nginx docs](https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_set_header),
    /// ingress-nginx issue #11040). The line does nothing.
    ///
    /// ## Example
    /// ```nginx
    /// proxy_set_header X-Forwarded-Proto "";
    /// ```
    ///
    /// ## Use instead
    /// ```nginx
    /// # nothing: the controller's header cannot be removed from a snippet
    /// ```
    ///
    /// ## Fix
    /// Remove the line (`lint --fix`, a safe fix: nginx sends nothing for it). If the goal was to
    /// stop a wrong value, change the controller's value with its ConfigMap key or annotation
    /// (`use-forwarded-headers`, `upstream-vhost`, ...).
    ///
    /// ## Known limits
    /// In the external-auth location the controller's own X-Forwarded-Proto and Content-Length
    /// are empty; there an `auth-snippet` line is a real override and is not reported.
    pub static INEFFECTIVE_EMPTY_HEADER = {
        id: "ineffective-empty-header",
        name: "IneffectiveEmptyHeader",
        severity: Warning,
        summary: "an empty proxy_set_header value cannot remove the header ingress-nginx sets",
        since: "0.1.0",
    }
}

/// Report empty user lines for names the controller sends.
pub fn check(model: &LocationModel, out: &mut Vec<Diagnostic>) {
    for (_, line) in model.effective_user_lines() {
        if !line.value.is_empty() {
            continue;
        }
        let Some(t) = model.template_for(line) else {
            continue;
        };
        let name = &line.name;
        let message = format!(
            "an empty value does not remove {name}: nginx drops only this line and still sends {}'s `{name}` line",
            model.voice.controller
        );
        let help = match (model.voice.knob_for)(name) {
            Some(knob) => format!("{}; {knob}", remove_advice(line)),
            None => remove_advice(line),
        };
        out.push(
            line.diagnostic(&INEFFECTIVE_EMPTY_HEADER, message)
                .help(help)
                .label("has no effect")
                .note(model.template_note(t))
                .related_opt(t.location, "set first here")
                .fix_opt(line.removal(Applicability::Safe)),
        );
    }
}
