"""The service's HTML pages (double opt-in, unsubscribe, preferences), in the person's language.

The language is the first of
1. what leadflow knows about the person: the contact's language, or the language the e-book
   form was sent in;
2. the browser's `Accept-Language` (werkzeug's parser: quality values, `de-CH` → `de`);
3. the global tenant's language (`tenants.yaml`);
that the pages are written in (`TEXTS`; English when none is).

Every page is one minimal document: a title, paragraphs, and optionally a link or a form
with one button. Every value is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import sqlalchemy as sa
from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Connection
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from leadflow.config import Config

# Every answer of the service: pages name a person, pixels must reach it on every open.
NO_STORE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0, private",
    "Pragma": "no-cache",
    "Expires": "0",
}
FALLBACK_LANGUAGE = "en"

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "check_inbox": "Please check your inbox",
        "check_inbox_text": (
            "We have sent you an e-mail with a confirmation link. Once you confirm, your "
            "download starts."
        ),
        "please_confirm": "Please confirm",
        "please_confirm_text": "Press the button to confirm your e-mail address.",
        "confirm": "Confirm",
        "expired": "This link has expired",
        "expired_text": "Please fill in the form again; you will receive a new link.",
        "thank_you": "Thank you",
        "download_ready": "Thank you — your download is ready",
        "confirmed_text": "Your e-mail address is confirmed.",
        "invalid_link": "This link is not valid",
        "invalid_link_text": (
            "Please use the link from the most recent confirmation e-mail, or fill in the form "
            "again."
        ),
        "not_found": "Not found",
        "not_found_text": "This link is not valid.",
        "unsubscribe": "Unsubscribe",
        "unsubscribe_question": "Do you want to stop receiving marketing e-mail from us?",
        "unsubscribed": "Unsubscribed",
        "unsubscribed_text": "You will receive no more marketing e-mail from us.",
        "preferences": "E-mail preferences",
        "unsubscribe_from": "Unsubscribe from:",
        "all_marketing": "All marketing e-mail",
        "only_tenant": "Only e-mail from {tenant}",
        "save": "Save",
        "saved_text": "Your preferences are saved.",
        "unknown_choice": "Unknown choice.",
    },
    "de": {
        "check_inbox": "Bitte sehen Sie in Ihr Postfach",
        "check_inbox_text": (
            "Wir haben Ihnen eine E-Mail mit einem Bestätigungslink geschickt. Sobald Sie "
            "bestätigen, beginnt Ihr Download."
        ),
        "please_confirm": "Bitte bestätigen",
        "please_confirm_text": "Klicken Sie auf die Schaltfläche, um Ihre E-Mail-Adresse zu "
        "bestätigen.",
        "confirm": "Bestätigen",
        "expired": "Dieser Link ist abgelaufen",
        "expired_text": "Bitte füllen Sie das Formular erneut aus; Sie erhalten einen neuen Link.",
        "thank_you": "Vielen Dank",
        "download_ready": "Vielen Dank — Ihr Download ist bereit",
        "confirmed_text": "Ihre E-Mail-Adresse ist bestätigt.",
        "invalid_link": "Dieser Link ist nicht gültig",
        "invalid_link_text": (
            "Bitte verwenden Sie den Link aus der neuesten Bestätigungs-E-Mail, oder füllen Sie "
            "das Formular erneut aus."
        ),
        "not_found": "Nicht gefunden",
        "not_found_text": "Dieser Link ist nicht gültig.",
        "unsubscribe": "Abmelden",
        "unsubscribe_question": "Möchten Sie keine Marketing-E-Mails mehr von uns erhalten?",
        "unsubscribed": "Abgemeldet",
        "unsubscribed_text": "Sie erhalten keine Marketing-E-Mails mehr von uns.",
        "preferences": "E-Mail-Einstellungen",
        "unsubscribe_from": "Abmelden von:",
        "all_marketing": "Allen Marketing-E-Mails",
        "only_tenant": "Nur den E-Mails von {tenant}",
        "save": "Speichern",
        "saved_text": "Ihre Einstellungen sind gespeichert.",
        "unknown_choice": "Unbekannte Auswahl.",
    },
    "fr": {
        "check_inbox": "Veuillez consulter votre boîte de réception",
        "check_inbox_text": (
            "Nous vous avons envoyé un e-mail avec un lien de confirmation. Dès que vous "
            "confirmez, votre téléchargement commence."
        ),
        "please_confirm": "Veuillez confirmer",
        "please_confirm_text": "Appuyez sur le bouton pour confirmer votre adresse e-mail.",
        "confirm": "Confirmer",
        "expired": "Ce lien a expiré",
        "expired_text": "Veuillez remplir à nouveau le formulaire ; vous recevrez un nouveau lien.",
        "thank_you": "Merci",
        "download_ready": "Merci — votre téléchargement est prêt",
        "confirmed_text": "Votre adresse e-mail est confirmée.",
        "invalid_link": "Ce lien n'est pas valide",
        "invalid_link_text": (
            "Veuillez utiliser le lien du dernier e-mail de confirmation, ou remplir à nouveau "
            "le formulaire."
        ),
        "not_found": "Introuvable",
        "not_found_text": "Ce lien n'est pas valide.",
        "unsubscribe": "Se désabonner",
        "unsubscribe_question": "Voulez-vous ne plus recevoir nos e-mails marketing ?",
        "unsubscribed": "Désabonné",
        "unsubscribed_text": "Vous ne recevrez plus d'e-mails marketing de notre part.",
        "preferences": "Préférences e-mail",
        "unsubscribe_from": "Se désabonner de :",
        "all_marketing": "Tous les e-mails marketing",
        "only_tenant": "Seulement les e-mails de {tenant}",
        "save": "Enregistrer",
        "saved_text": "Vos préférences sont enregistrées.",
        "unknown_choice": "Choix inconnu.",
    },
    "it": {
        "check_inbox": "Controllate la vostra casella di posta",
        "check_inbox_text": (
            "Vi abbiamo inviato un'e-mail con un link di conferma. Non appena confermate, il "
            "download inizia."
        ),
        "please_confirm": "Confermate, per favore",
        "please_confirm_text": "Premete il pulsante per confermare il vostro indirizzo e-mail.",
        "confirm": "Conferma",
        "expired": "Questo link è scaduto",
        "expired_text": "Compilate di nuovo il modulo; riceverete un nuovo link.",
        "thank_you": "Grazie",
        "download_ready": "Grazie — il vostro download è pronto",
        "confirmed_text": "Il vostro indirizzo e-mail è confermato.",
        "invalid_link": "Questo link non è valido",
        "invalid_link_text": (
            "Usate il link dell'e-mail di conferma più recente, oppure compilate di nuovo il "
            "modulo."
        ),
        "not_found": "Non trovato",
        "not_found_text": "Questo link non è valido.",
        "unsubscribe": "Annulla l'iscrizione",
        "unsubscribe_question": "Non volete più ricevere le nostre e-mail di marketing?",
        "unsubscribed": "Iscrizione annullata",
        "unsubscribed_text": "Non riceverete più e-mail di marketing da noi.",
        "preferences": "Preferenze e-mail",
        "unsubscribe_from": "Annulla l'iscrizione a:",
        "all_marketing": "Tutte le e-mail di marketing",
        "only_tenant": "Solo le e-mail di {tenant}",
        "save": "Salva",
        "saved_text": "Le vostre preferenze sono salvate.",
        "unknown_choice": "Scelta sconosciuta.",
    },
    "es": {
        "check_inbox": "Revise su bandeja de entrada",
        "check_inbox_text": (
            "Le hemos enviado un correo con un enlace de confirmación. En cuanto confirme, "
            "comenzará la descarga."
        ),
        "please_confirm": "Confirme, por favor",
        "please_confirm_text": "Pulse el botón para confirmar su dirección de correo electrónico.",
        "confirm": "Confirmar",
        "expired": "Este enlace ha caducado",
        "expired_text": "Rellene de nuevo el formulario; recibirá un enlace nuevo.",
        "thank_you": "Gracias",
        "download_ready": "Gracias — su descarga está lista",
        "confirmed_text": "Su dirección de correo electrónico está confirmada.",
        "invalid_link": "Este enlace no es válido",
        "invalid_link_text": (
            "Utilice el enlace del correo de confirmación más reciente, o rellene de nuevo el "
            "formulario."
        ),
        "not_found": "No encontrado",
        "not_found_text": "Este enlace no es válido.",
        "unsubscribe": "Darse de baja",
        "unsubscribe_question": "¿Desea dejar de recibir nuestros correos de marketing?",
        "unsubscribed": "Baja confirmada",
        "unsubscribed_text": "No recibirá más correos de marketing de nuestra parte.",
        "preferences": "Preferencias de correo",
        "unsubscribe_from": "Darse de baja de:",
        "all_marketing": "Todos los correos de marketing",
        "only_tenant": "Solo los correos de {tenant}",
        "save": "Guardar",
        "saved_text": "Sus preferencias se han guardado.",
        "unknown_choice": "Opción desconocida.",
    },
}


def language_for(request: Request, config: Config, *known: str | None) -> str:
    """The pages' language for this person (module docstring): the first of `known` that
    the pages are written in, else the browser's choice, else the global tenant's."""
    for language in known:
        if language in TEXTS:
            return language
    header = request.headers.get("accept-language")
    if header:
        accepted = parse_accept_header(header, LanguageAccept).best_match(list(TEXTS))
        if accepted is not None:
            return accepted
    default = config.global_tenant.language
    return default if default in TEXTS else FALLBACK_LANGUAGE


def text(language: str, key: str, **values: str) -> str:
    return TEXTS[language][key].format(**values)


def page(
    language: str,
    title_key: str,
    paragraphs: Sequence[str] = (),
    *,
    status_code: int = 200,
    link: tuple[str, str] | None = None,
    form: tuple[str, str, str] | None = None,
) -> HTMLResponse:
    """A page titled by `title_key`, with `paragraphs` (text), an optional `link` (url,
    label) and an optional one-button POST form (action, button key, extra inputs' HTML,
    built by the caller from escaped values)."""
    title = _text_node(text(language, title_key))
    parts = [f"<h1>{title}</h1>"]
    parts += [f"<p>{_text_node(paragraph)}</p>" for paragraph in paragraphs]
    if link is not None:
        url, label = link
        parts.append(f'<p><a href="{html.escape(url)}">{_text_node(label)}</a></p>')
    if form is not None:
        action, button_key, inputs = form
        button = _text_node(text(language, button_key))
        parts.append(
            f'<form method="post" action="{html.escape(action)}">{inputs}'
            f'<button type="submit">{button}</button></form>'
        )
    document = (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="robots" content="noindex">'
        f"<title>{title}</title></head><body>{''.join(parts)}</body></html>"
    )
    return HTMLResponse(
        document,
        status_code=status_code,
        headers={**NO_STORE, "Content-Language": language},
    )


def _text_node(value: str) -> str:
    """`value` escaped for element content (quotes need no escaping there)."""
    return html.escape(value, quote=False)


def contact_language(connection: Connection, contact_id: str | None) -> str | None:
    """The contact's language in raw.contacts (None for no contact, or none recorded)."""
    if contact_id is None:
        return None
    return connection.execute(
        sa.text("select lower(language) from raw.contacts where contact_id = :id"),
        {"id": contact_id},
    ).scalar()
