"""A consultant's mailbox, generated: an INBOX and a sent folder as mail clients write them.

Deterministic (a seeded random generator, dates counted from a fixed
instant, never the wall clock), so that every run of tests/bench/imap_sync.py
reads the same messages. The mailbox is the owner's (Claire Martin at
cabinet.example) and spans the year and a half before its last day:

- in INBOX, mail from the clients' contacts (new threads, and replies naming
  the owner's messages in In-Reply-To and References), from people who are
  not contacts (partners, suppliers, the accountant), newsletters and
  notifications (List-Id, List-Unsubscribe, Precedence: bulk), out-of-office
  answers (Auto-Submitted, X-Autoreply, Exchange's headers) and delivery
  status notifications (multipart/report, RFC 3464) of the owner's messages;
- in the sent folder, the owner's messages to contacts (replies, new
  threads, "Point d'avancement" status updates) and to others.

Bodies are a few kilobytes of text, some with an HTML alternative, replies
quoting what they answer; names and subjects carry French accents, in
RFC 2047 encoded words as mail clients write them. Messages that answer
followupd's own (`Nudge`: a client nudge's Message-ID) can be added after
the history: replies, out-of-office answers and bounces.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.header import Header
from email.utils import format_datetime

OWNER_NAME, OWNER_ADDRESS = "Claire Martin", "claire@cabinet.example"
OWNER_DOMAIN = "cabinet.example"

FIRST_NAMES = ("Camille", "Julien", "Sophie", "Thomas", "Élodie", "Nicolas", "Léa",
               "François", "Hélène", "Mathieu", "Chloé", "Sébastien", "Anaïs", "Benoît",
               "Margaux", "Jérôme", "Inès", "Grégoire", "Zoé", "Rémi")  # fmt: skip
LAST_NAMES = ("Dubois", "Lefèvre", "Moreau", "Laurent", "Girard", "Bonnet", "Dupont",
              "Lambert", "Fontaine", "Rousseau", "Vincent", "Müller", "Faure", "André",
              "Mercier", "Chevalier", "Gauthier", "Perrin", "Roussel", "Lemaître")  # fmt: skip
COMPANIES = ("Boulangerie", "Cabinet", "Atelier", "Transports", "Éditions", "Groupe",
             "Laboratoires", "Menuiserie", "Agence", "Clinique vétérinaire")  # fmt: skip
TITLES = ("Audit du système d'information", "Refonte du site e-commerce",
          "Mise en conformité RGPD", "Migration de la comptabilité vers le cloud",
          "Formation des équipes commerciales", "Étude de marché Benelux",
          "Déploiement d'un ERP", "Accompagnement à la levée de fonds")  # fmt: skip
TOPICS = ("Planning de la phase 2", "Devis révisé", "Compte rendu de la réunion de jeudi",
          "Accès au serveur de recette", "Question sur la facture", "Données à extraire",
          "Proposition de créneaux", "Documents pour l'atelier", "Retours sur la maquette",
          "Validation du cahier des charges", "Relevé de décisions", "Contrat signé",
          "Présentation au comité", "Suite de notre échange", "Budget 2027")  # fmt: skip
STATUS_UPDATES = ("Point d'avancement", "Point d'étape", "Compte rendu hebdomadaire")
OTHERS = (("Expert-comptable Vidal", "cabinet@vidal-expertise.example"),
          ("Marc Delorme", "marc.delorme@partenaire.example"),
          ("Service client Imprimerie Moderne", "contact@imprimerie-moderne.example"),
          ("Nadia Benali", "nadia@freelance-design.example"),
          ("URSSAF", "ne-pas-repondre@urssaf.example"),
          ("Banque Populaire Pro", "pro@banque.example"),
          ("Club des indépendants", "bureau@club-independants.example"),
          ("Pierre Renaud", "pierre.renaud@gmail.example"))  # fmt: skip
OTHER_TOPICS = ("Déclaration trimestrielle", "Votre relevé de compte", "Invitation : afterwork",
                "Devis impression plaquettes", "Maquettes v3", "Rappel : cotisation annuelle",
                "Réunion du bureau", "Bilan 2025 à valider", "Déjeuner la semaine prochaine ?",
                "Votre commande n° 48213")  # fmt: skip
NEWSLETTERS = (("Les Échos Entrepreneurs", "newsletter@lesechos-entrepreneurs.example",
                "La lettre du lundi"),
               ("LinkedIn", "notifications-noreply@linkedin.example",
                "Vous apparaissez dans 12 recherches"),
               ("Malt", "hello@malt.example", "Nouvelles missions pour vous"),
               ("Qonto", "no-reply@qonto.example", "Votre relevé mensuel est disponible"),
               ("Notion", "notify@notion.example", "Mises à jour dans votre espace"),
               ("BPI France", "info@bpifrance.example", "Appels à projets du mois"))  # fmt: skip
SENTENCES = ("Merci pour votre retour rapide sur ce point.",
             "Comme convenu lors de notre dernier échange, je vous transmets les éléments.",
             "Pourriez-vous me confirmer la date de livraison des extractions ?",
             "Nous avons bien avancé sur la cartographie des processus cette semaine.",
             "Le comité de pilotage a validé le périmètre de la phase 2.",
             "Je reviens vers vous concernant les accès au serveur de recette.",
             "La maquette intègre désormais les remarques de l'équipe commerciale.",
             "Il reste à arbitrer le budget de la formation des utilisateurs.",
             "Vous trouverez en pièce jointe la version révisée du document.",
             "N'hésitez pas à me dire si un autre créneau vous convient mieux.",
             "Les premiers résultats de l'audit sont encourageants, avec quelques réserves.",
             "Nous proposons de décaler la réunion de lancement au mardi suivant.",
             "La facture correspondante vous a été adressée en début de mois.",
             "Je me permets de vous relancer au sujet des données manquantes.",
             "Le planning détaillé est disponible dans l'espace partagé du projet.",
             "Nous devons encore valider les prérequis techniques avec votre DSI.",
             "Bonne nouvelle : le prestataire a confirmé sa disponibilité en janvier.",
             "Voici le relevé de décisions de la réunion de ce matin.",
             "Je suis disponible jeudi après-midi ou vendredi matin pour en parler.",
             "Les indicateurs de suivi seront présentés au prochain comité.")  # fmt: skip
GREETINGS = ("Bonjour {first},", "Bonjour,", "Chère {first},", "Hello {first},")
CLOSINGS = ("Bien cordialement,", "Belle journée,", "Bien à vous,", "Cordialement,")
OUT_OF_OFFICE = ("Je suis absent(e) du bureau jusqu'au lundi {back} avec un accès limité à "
                 "mes messages. Pour toute urgence, merci de contacter l'accueil au "
                 "01 23 45 67 89.")  # fmt: skip


@dataclass(frozen=True)
class Person:
    key: str
    client: str  # the client's key
    name: str
    email: str


@dataclass(frozen=True)
class Nudge:
    """A client nudge followupd sent (its follow-up's Message-ID), which mail may answer."""

    message_id: str  # with its angle brackets
    recipient: str
    subject: str
    sent_at: datetime


@dataclass(frozen=True)
class Mail:
    """One generated message: where it goes, what it is, and its bytes (CRLF line ends)."""

    folder: str  # "inbox" or "sent"
    kind: str  # what it stands for, for the report: "reply from a contact", "newsletter"…
    date: datetime
    message_id: str
    data: bytes


@dataclass
class Crowd:
    """The owner's clients and contacts; the data file imports them into followupd's store."""

    clients: list[tuple[str, str]] = field(default_factory=list)  # key, name
    contacts: list[Person] = field(default_factory=list)


@dataclass
class _Thread:
    """A conversation so far: what a reply names, quotes and is about."""

    subject: str
    ids: list[str]  # the Message-IDs of its messages, oldest first
    contact: Person
    last_text: str


def slug(text: str) -> str:
    table = str.maketrans("éèêëàâäîïôöûüùçÉ", "eeeeaaaiioouuucE")
    return "-".join(text.translate(table).lower().replace("'", " ").split())


def crowd(rng: random.Random, contacts: int) -> Crowd:
    """`contacts` people, five for each client."""
    found = Crowd()
    for n in range(max(1, contacts // 5)):
        name = f"{rng.choice(COMPANIES)} {rng.choice(LAST_NAMES)}"
        key = f"{slug(name)}-{n}"
        found.clients.append((key, name))
        for k in range(5):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{slug(first)}.{slug(last)}@{key}.example"
            found.contacts.append(Person(f"p{5 * n + k}", key, f"{first} {last}", email))
    return found


def encoded(text: str) -> str:
    """A header's text as mail clients write it: ASCII as is, else RFC 2047 encoded words."""
    if text.isascii():
        return text
    return Header(text, "utf-8").encode()


def address(name: str, email: str) -> str:
    shown = encoded(name)
    if shown == name and any(char in name for char in ',.;:"()'):
        shown = f'"{name}"'
    return f"{shown} <{email}>"


class MailWriter:
    """Writes the messages; keeps the threads and the owner's messages that mail answers."""

    def __init__(self, rng: random.Random, people: Crowd) -> None:
        self.rng = rng
        self.people = people
        self.threads: list[_Thread] = []  # recent conversations with contacts
        # (Message-ID, subject, the contact, text) of the owner's mail and of the contacts'
        self.owner_sent: list[tuple[str, str, Person, str]] = []
        self.contact_mail: list[tuple[str, str, Person, str]] = []
        self.serial = 0

    # -- pieces ------------------------------------------------------------------------

    def new_id(self, domain: str) -> str:
        self.serial += 1
        return f"<{self.rng.getrandbits(64):016x}.{self.serial}@{domain}>"

    def body(self, first: str, low: int = 800, high: int = 4500) -> str:
        rng = self.rng
        size = int(min(high, max(low, rng.lognormvariate(7.5, 0.5))))
        lines = [rng.choice(GREETINGS).format(first=first), ""]
        paragraph: list[str] = []
        while sum(len(line) for line in lines) < size:
            paragraph.append(rng.choice(SENTENCES))
            if len(paragraph) >= rng.randrange(2, 5):
                lines += [*wrap(" ".join(paragraph)), ""]
                paragraph = []
        lines += [rng.choice(CLOSINGS), ""]
        return "\n".join(lines)

    def message(
        self,
        headers: list[tuple[str, str]],
        text: str,
        quoted: str = "",
        html: bool = False,
    ) -> bytes:
        """The message's bytes: the headers, then a text body (and an HTML alternative)."""
        if quoted:
            text += "\n" + "\n".join(f"> {line}" for line in quoted.splitlines()[:25]) + "\n"
        lines = [f"{name}: {value}" for name, value in headers]
        lines.append("MIME-Version: 1.0")
        if html:
            boundary = f"=_alt_{self.rng.getrandbits(48):012x}"
            markup = "".join(f"<p>{part}</p>" for part in text.split("\n\n"))
            lines += [f'Content-Type: multipart/alternative; boundary="{boundary}"', "",
                      f"--{boundary}", "Content-Type: text/plain; charset=utf-8",
                      "Content-Transfer-Encoding: 8bit", "", text, f"--{boundary}",
                      "Content-Type: text/html; charset=utf-8",
                      "Content-Transfer-Encoding: 8bit", "",
                      f'<html><body style="font-family: Arial">{markup}</body></html>',
                      f"--{boundary}--", ""]  # fmt: skip
        else:
            lines += ["Content-Type: text/plain; charset=utf-8; format=flowed",
                      "Content-Transfer-Encoding: 8bit", "", text]  # fmt: skip
        return "\r\n".join("\r\n".join(line.split("\n")) for line in lines).encode()

    # -- kinds of mail -----------------------------------------------------------------

    def from_contact(self, when: datetime) -> Mail:
        """A contact writes: a reply to the owner's last message to them, or a new thread."""
        rng = self.rng
        if self.owner_sent and rng.random() < 0.65:
            parent_id, subject, person, quoted = rng.choice(self.owner_sent[-60:])
            subject = subject if subject.lower().startswith("re") else f"RE: {subject}"
            thread = self._thread_of(parent_id, subject, person, quoted)
            kind = "reply from a contact"
        else:
            person = rng.choice(self.people.contacts)
            subject = rng.choice(TOPICS)
            thread = _Thread(subject, [], person, "")
            self.threads.append(thread)
            kind = "new mail from a contact"
        message_id = self.new_id(person.email.split("@")[1])
        text = self.body("Claire") + f"{person.name}\n"
        headers = [("Date", format_datetime(when)), ("From", address(person.name, person.email)),
                   ("To", address(OWNER_NAME, OWNER_ADDRESS)),
                   ("Subject", encoded(thread.subject)), ("Message-ID", message_id)]  # fmt: skip
        if rng.random() < 0.2:
            colleague = rng.choice(self._colleagues(person))
            headers.insert(3, ("Cc", address(colleague.name, colleague.email)))
        headers += answer_headers(thread.ids)
        headers.append(("X-Mailer", rng.choice(("Microsoft Outlook 16.0", "Apple Mail (2.3774)",
                                                "Mozilla Thunderbird 128.5"))))  # fmt: skip
        data = self.message(headers, text, thread.last_text, html=rng.random() < 0.35)
        thread.ids.append(message_id)
        thread.last_text = text
        self.contact_mail.append((message_id, thread.subject, person, text))
        return Mail("inbox", kind, when, message_id, data)

    def from_owner(self, when: datetime) -> Mail:
        """The owner writes: a reply to a contact, a status update, a new thread, or to others."""
        rng = self.rng
        draw = rng.random()
        recent = self.contact_mail[-300:]
        to: Person | None
        if draw < 0.55 and recent:
            parent_id, subject, to, quoted = rng.choice(recent)
            subject = subject if subject.lower().startswith("re") else f"Re: {subject}"
            thread = self._thread_of(parent_id, subject, to, quoted)
            kind = "owner's reply to a contact"
        elif draw < 0.70:
            to = rng.choice(self.people.contacts)
            subject = f"{rng.choice(STATUS_UPDATES)} — {rng.choice(TITLES)}"
            thread = _Thread(subject, [], to, "")
            kind = "owner's status update"
        elif draw < 0.88:
            to = rng.choice(self.people.contacts)
            thread = _Thread(rng.choice(TOPICS), [], to, "")
            self.threads.append(thread)
            kind = "owner's new mail to a contact"
        else:
            to = None
            name, email = rng.choice(OTHERS)
            thread = _Thread(f"Re: {rng.choice(OTHER_TOPICS)}", [], Person("", "", name, email), "")
            kind = "owner's mail to others"
        person = thread.contact
        message_id = self.new_id(OWNER_DOMAIN)
        first = person.name.split()[0]
        text = self.body(first) + "Claire Martin\nCabinet Martin Conseil — 06 12 34 56 78\n"
        headers = [("Date", format_datetime(when)), ("From", address(OWNER_NAME, OWNER_ADDRESS)),
                   ("To", address(person.name, person.email)),
                   ("Subject", encoded(thread.subject)), ("Message-ID", message_id),
                   *answer_headers(thread.ids),
                   ("User-Agent", "Mozilla Thunderbird 128.5")]  # fmt: skip
        if to is not None and rng.random() < 0.25:
            colleague = rng.choice(self._colleagues(to))
            headers.insert(3, ("Cc", address(colleague.name, colleague.email)))
        data = self.message(headers, text, thread.last_text, html=rng.random() < 0.2)
        thread.ids.append(message_id)
        thread.last_text = text
        if to is not None:
            self.owner_sent.append((message_id, thread.subject, to, text))
        return Mail("sent", kind, when, message_id, data)

    def from_others(self, when: datetime) -> Mail:
        rng = self.rng
        name, email = rng.choice(OTHERS)
        message_id = self.new_id(email.split("@")[1])
        headers = [("Date", format_datetime(when)), ("From", address(name, email)),
                   ("To", address(OWNER_NAME, OWNER_ADDRESS)),
                   ("Subject", encoded(rng.choice(OTHER_TOPICS))),
                   ("Message-ID", message_id)]  # fmt: skip
        data = self.message(headers, self.body("Claire") + f"{name}\n", html=rng.random() < 0.5)
        return Mail("inbox", "mail from others", when, message_id, data)

    def newsletter(self, when: datetime) -> Mail:
        rng = self.rng
        name, email, subject = rng.choice(NEWSLETTERS)
        domain = email.split("@")[1]
        message_id = self.new_id(domain)
        headers = [("Date", format_datetime(when)), ("From", address(name, email)),
                   ("To", OWNER_ADDRESS), ("Subject", encoded(subject)),
                   ("Message-ID", message_id), ("List-Id", f"<lettre.{domain}>"),
                   ("List-Unsubscribe", f"<https://{domain}/u/{rng.getrandbits(40):x}>"),
                   ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                   ("Precedence", "bulk")]  # fmt: skip
        text = self.body("Claire", 2000, 6000)
        return Mail("inbox", "newsletter", when, message_id, self.message(headers, text, html=True))

    def out_of_office(
        self, when: datetime, answered: tuple[str, str, Person] | None = None
    ) -> Mail:
        """An automatic answer to one of the owner's messages (the last few, or `answered`)."""
        rng = self.rng
        if answered is None:
            parent_id, subject, person, _ = rng.choice(self.owner_sent[-50:])
        else:
            parent_id, subject, person = answered
        message_id = self.new_id(person.email.split("@")[1])
        style = rng.randrange(3)
        prefix = ("Réponse automatique : ", "Automatic reply: ", "Absent : ")[style]
        headers = [("Date", format_datetime(when)), ("From", address(person.name, person.email)),
                   ("To", address(OWNER_NAME, OWNER_ADDRESS)),
                   ("Subject", encoded(prefix + subject)), ("Message-ID", message_id),
                   ("In-Reply-To", parent_id), ("References", parent_id)]  # fmt: skip
        if style == 1:  # Exchange
            headers += [("Auto-Submitted", "auto-generated"),
                        ("X-Auto-Response-Suppress", "All"),
                        ("X-MS-Exchange-Inbox-Rules-Loop", person.email)]  # fmt: skip
        else:  # Sieve vacation, webmails
            headers += [("Auto-Submitted", "auto-replied (vacation)"), ("X-Autoreply", "yes"),
                        ("Precedence", "auto_reply")]  # fmt: skip
        back = (when + timedelta(days=rng.randrange(3, 15))).strftime("%d/%m")
        text = OUT_OF_OFFICE.format(back=back) + f"\n\n{person.name}\n"
        return Mail("inbox", "out-of-office", when, message_id, self.message(headers, text))

    def bounce(
        self, when: datetime, returned: tuple[str, str, str, datetime] | None = None
    ) -> Mail:
        """A Postfix delivery status notification (RFC 3464) of one of the owner's messages."""
        rng = self.rng
        if returned is None:
            parent_id, subject, person, _ = rng.choice(self.owner_sent[-50:])
            recipient, name, sent = person.email, person.name, when - timedelta(seconds=5)
        else:
            parent_id, recipient, subject, sent = returned
            name = recipient
        queue = f"{rng.getrandbits(40):010X}"
        boundary = f"{queue}.{rng.getrandbits(32)}/mail.{OWNER_DOMAIN}"
        message_id = f"<{when:%Y%m%d%H%M%S}.{queue}@mail.{OWNER_DOMAIN}>"
        domain = recipient.split("@")[1]
        notice = (
            "This is the mail system at host mail.cabinet.example.\n\n"
            "I'm sorry to have to inform you that your message could not\n"
            "be delivered to one or more recipients. It's attached below.\n\n"
            f"<{recipient}>: host mx.{domain}[192.0.2.25] said: 550 5.1.1\n"
            f"    <{recipient}>: Recipient address rejected: User unknown\n"
        )
        report = (
            f"Reporting-MTA: dns; mail.{OWNER_DOMAIN}\nX-Postfix-Queue-ID: {queue}\n"
            f"Arrival-Date: {format_datetime(sent)}\n\n"
            f"Final-Recipient: rfc822; {recipient}\nOriginal-Recipient: rfc822;{recipient}\n"
            f"Action: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.{domain}\n"
            f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected:\n"
            "    User unknown in virtual mailbox table\n"
        )
        original = (
            f"Message-ID: {parent_id}\nDate: {format_datetime(sent)}\n"
            f"From: {address(OWNER_NAME, OWNER_ADDRESS)}\nTo: {address(name, recipient)}\n"
            f"Subject: {encoded(subject)}\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\n"
        )
        lines = [
            "Return-Path: <>", f"Date: {format_datetime(when)}",
            f"From: MAILER-DAEMON@mail.{OWNER_DOMAIN} (Mail Delivery System)",
            "Subject: Undelivered Mail Returned to Sender", f"To: {OWNER_ADDRESS}",
            "Auto-Submitted: auto-replied", "MIME-Version: 1.0",
            "Content-Type: multipart/report; report-type=delivery-status;",
            f'\tboundary="{boundary}"',
            "Content-Transfer-Encoding: 8bit", f"Message-Id: {message_id}", "",
            "This is a MIME-encapsulated message.", "", f"--{boundary}",
            "Content-Description: Notification", "Content-Type: text/plain; charset=utf-8", "",
            notice, f"--{boundary}", "Content-Description: Delivery report",
            "Content-Type: message/delivery-status", "", report, f"--{boundary}",
            "Content-Description: Undelivered Message Headers",
            "Content-Type: text/rfc822-headers", "", original, f"--{boundary}--", "",
        ]  # fmt: skip
        data = "\r\n".join("\r\n".join(line.split("\n")) for line in lines).encode()
        return Mail("inbox", "delivery status notification", when, message_id, data)

    def answer_to_nudge(self, when: datetime, nudge: Nudge, person: Person) -> Mail:
        """A contact's reply to one of followupd's client nudges."""
        message_id = self.new_id(person.email.split("@")[1])
        subject = f"RE: {nudge.subject}"
        text = (
            "Bonjour Claire,\n\nLe virement est parti hier, vous devriez le recevoir d'ici "
            "deux jours. Désolé pour le retard.\n\nBien cordialement,\n" + person.name + "\n"
        )
        headers = [("Date", format_datetime(when)), ("From", address(person.name, person.email)),
                   ("To", address(OWNER_NAME, OWNER_ADDRESS)), ("Subject", encoded(subject)),
                   ("Message-ID", message_id), ("In-Reply-To", nudge.message_id),
                   ("References", nudge.message_id),
                   ("X-Mailer", "Microsoft Outlook 16.0")]  # fmt: skip
        return Mail("inbox", "reply to a followupd nudge", when, message_id,
                    self.message(headers, text))  # fmt: skip

    # -- threads -----------------------------------------------------------------------

    def _thread_of(self, parent_id: str, subject: str, person: Person, quoted: str) -> _Thread:
        for thread in reversed(self.threads[-500:]):
            if thread.ids and thread.ids[-1] == parent_id:
                thread.subject = subject
                return thread
        thread = _Thread(subject, [parent_id], person, quoted)
        self.threads.append(thread)
        return thread

    def _colleagues(self, person: Person) -> list[Person]:
        same = [other for other in self.people.contacts if other.client == person.client]
        return [other for other in same if other != person] or same


def answer_headers(ids: Sequence[str]) -> list[tuple[str, str]]:
    """In-Reply-To and References for a reply to the last of `ids` (References kept short)."""
    if not ids:
        return []
    chain = [*ids[:1], *ids[1:][-9:]]
    return [("In-Reply-To", ids[-1]), ("References", "\n ".join(chain))]


def wrap(text: str, width: int = 72) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return [*lines, current]


def history(
    rng: random.Random,
    people: Crowd,
    inbox: int,
    sent: int,
    first: datetime,
    last: datetime,
) -> tuple[MailWriter, list[Mail]]:
    """`inbox` + `sent` messages between `first` and `last`, oldest first, in office hours.

    Of INBOX, about 55 % from contacts, 20 % from others, 20 % newsletters, 4 %
    out-of-office answers and 0.5 % bounces; the sent folder is the owner's.
    """
    writer = MailWriter(rng, people)
    total = inbox + sent
    span = (last - first).total_seconds()
    moments = sorted(rng.random() * span for _ in range(total))
    found: list[Mail] = []
    left_inbox, left_sent = inbox, sent
    for offset in moments:
        when = office_hours(first + timedelta(seconds=offset))
        to_sent = rng.random() * (left_inbox + left_sent) < left_sent
        if to_sent and (writer.contact_mail or left_inbox == 0):
            found.append(writer.from_owner(when))
            left_sent -= 1
            continue
        draw = rng.random()
        if draw < 0.55 or not writer.owner_sent:
            found.append(writer.from_contact(when))
        elif draw < 0.75:
            found.append(writer.from_others(when))
        elif draw < 0.955:
            found.append(writer.newsletter(when))
        elif draw < 0.995:
            found.append(writer.out_of_office(when))
        else:
            found.append(writer.bounce(when))
        left_inbox -= 1
    return writer, found


def office_hours(moment: datetime) -> datetime:
    """`moment` moved into a weekday between 08:00 and 19:00 (most mail is written then)."""
    while moment.weekday() >= 5:
        moment += timedelta(days=1)
    if not 8 <= moment.hour < 19:
        moment = moment.replace(hour=8 + moment.hour % 11)
    return moment.replace(microsecond=0)
