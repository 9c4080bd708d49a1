"""The example company's world as plain data: countries, names, job titles, products, fairs.

Everything the generator draws from lives here, so its code stays about *how* rows are drawn.
Lists are small on purpose (a few dozen names per country): combined with account-specific
company names they give millions of distinct, plausible people without a name library.

None of the strings may contain a tab, a line break or a backslash: the generator writes
them into PostgreSQL's COPY text format unescaped (a test checks this).
"""

from __future__ import annotations

from dataclasses import dataclass


def _names(listing: str) -> tuple[str, ...]:
    """A comma-separated listing (names may contain spaces) as a tuple."""
    return tuple(name.strip() for name in listing.split(",") if name.strip())


def _codes(listing: str) -> tuple[str, ...]:
    return tuple(listing.split())


# --- countries --------------------------------------------------------------------------

COUNTRIES = ("DE", "FR", "IT", "ES", "AT", "CH")
# Share of accounts per country: Germany largest, then the three subsidiaries, then AT, CH.
COUNTRY_WEIGHTS = (0.40, 0.17, 0.15, 0.12, 0.09, 0.07)
LANGUAGE_OF_COUNTRY = {"DE": "de", "AT": "de", "CH": "de", "FR": "fr", "IT": "it", "ES": "es"}
TENANT_OF_COUNTRY = {"DE": "hq", "AT": "hq", "CH": "hq", "FR": "fr", "IT": "it", "ES": "es"}
LANGUAGES = ("de", "fr", "it", "es")
# Email domains of generated companies end in the reserved `.example` TLD (RFC 2606), with the
# country's TLD in front for realism: a demo pointed at a real SMTP relay by mistake can
# never mail a real company.
COMPANY_TLD = {"DE": "de", "AT": "at", "CH": "ch", "FR": "fr", "IT": "it", "ES": "es"}
RESERVED_SUFFIX = "example"
PHONE_PREFIX = {
    "DE": "+49",
    "AT": "+43",
    "CH": "+41",
    "FR": "+33",
    "IT": "+39",
    "ES": "+34",
}
TIME_ZONE = {
    "DE": "Europe/Berlin",
    "AT": "Europe/Vienna",
    "CH": "Europe/Zurich",
    "FR": "Europe/Paris",
    "IT": "Europe/Rome",
    "ES": "Europe/Madrid",
}


@dataclass(frozen=True)
class Region:
    """A Bundesland, région, regione, comunidad or canton, and its postcode prefixes."""

    name: str
    weight: float
    postcode_prefixes: tuple[str, ...]


# Postcode lengths: DE, FR, IT, ES five digits; AT, CH four. Prefixes are real leading digits
# of each region's postcodes; the remaining digits are drawn at random.
POSTCODE_LENGTH = {"DE": 5, "FR": 5, "IT": 5, "ES": 5, "AT": 4, "CH": 4}

REGIONS: dict[str, tuple[Region, ...]] = {
    "DE": (
        Region("Baden-Württemberg", 0.19, _codes("70 71 72 73 74 75 76 77 78 79 88 89")),
        Region("Bayern", 0.19, _codes("80 81 82 83 84 85 86 87 90 91 92 93 94 95 96 97")),
        Region(
            "Nordrhein-Westfalen",
            0.21,
            _codes("32 33 40 41 42 44 45 46 47 48 50 51 52 53 57 58 59"),
        ),
        Region("Niedersachsen", 0.09, _codes("26 27 29 30 31 37 38 49")),
        Region("Hessen", 0.07, _codes("34 35 36 60 61 63 64 65")),
        Region("Sachsen", 0.06, _codes("01 02 04 08 09")),
        Region("Rheinland-Pfalz", 0.05, _codes("54 55 56 67")),
        Region("Thüringen", 0.03, _codes("07 98 99")),
        Region("Sachsen-Anhalt", 0.02, _codes("06 39")),
        Region("Saarland", 0.02, _codes("66")),
        Region("Schleswig-Holstein", 0.02, _codes("23 24 25")),
        Region("Hamburg", 0.02, _codes("20 21 22")),
        Region("Berlin", 0.01, _codes("10 12 13")),
        Region("Brandenburg", 0.01, _codes("03 14 15 16")),
    ),
    "AT": (
        Region("Oberösterreich", 0.27, _codes("4")),
        Region("Steiermark", 0.18, _codes("8")),
        Region("Niederösterreich", 0.18, _codes("2 3")),
        Region("Wien", 0.1, _codes("1")),
        Region("Tirol", 0.09, _codes("6")),
        Region("Vorarlberg", 0.08, _codes("68 69")),
        Region("Salzburg", 0.06, _codes("5")),
        Region("Kärnten", 0.04, _codes("9")),
    ),
    "CH": (
        Region("Zürich", 0.22, _codes("80 81 84 86 88")),
        Region("Aargau", 0.15, _codes("50 51 52 53 54 56")),
        Region("Bern", 0.13, _codes("30 31 32 33 34 35 36")),
        Region("St. Gallen", 0.12, _codes("90 92 94 95 97")),
        Region("Luzern", 0.09, _codes("60 61 62")),
        Region("Thurgau", 0.09, _codes("85 93")),
        Region("Solothurn", 0.08, _codes("45 46 47")),
        Region("Basel-Landschaft", 0.07, _codes("41 44")),
        Region("Schwyz", 0.05, _codes("64 88")),
    ),
    "FR": (
        Region("Auvergne-Rhône-Alpes", 0.2, _codes("01 03 07 15 26 38 42 43 63 69 73 74")),
        Region("Île-de-France", 0.14, _codes("75 77 78 91 92 93 94 95")),
        Region("Grand Est", 0.12, _codes("08 10 51 52 54 55 57 67 68 88")),
        Region("Hauts-de-France", 0.11, _codes("02 59 60 62 80")),
        Region("Occitanie", 0.08, _codes("09 11 12 30 31 32 34 46 65 81 82")),
        Region("Nouvelle-Aquitaine", 0.08, _codes("16 17 19 24 33 40 47 64 79 86 87")),
        Region("Pays de la Loire", 0.08, _codes("44 49 53 72 85")),
        Region("Bourgogne-Franche-Comté", 0.07, _codes("21 25 39 58 70 71 89 90")),
        Region("Normandie", 0.06, _codes("14 27 50 61 76")),
        Region("Centre-Val de Loire", 0.06, _codes("18 28 36 37 41 45")),
    ),
    "IT": (
        Region("Lombardia", 0.3, _codes("20 21 22 23 24 25 26 27 46")),
        Region("Veneto", 0.16, _codes("30 31 32 35 36 37 45")),
        Region("Emilia-Romagna", 0.15, _codes("29 40 41 42 43 44 47 48")),
        Region("Piemonte", 0.11, _codes("10 12 13 14 15 28")),
        Region("Toscana", 0.07, _codes("50 51 52 53 54 55 56 57 58 59")),
        Region("Marche", 0.06, _codes("60 61 62 63")),
        Region("Friuli-Venezia Giulia", 0.05, _codes("33 34")),
        Region("Lazio", 0.05, _codes("00 01 02 03 04")),
        Region("Campania", 0.05, _codes("80 81 82 83 84")),
    ),
    "ES": (
        Region("Cataluña", 0.26, _codes("08 17 25 43")),
        Region("País Vasco", 0.15, _codes("01 20 48")),
        Region("Comunidad de Madrid", 0.14, _codes("28")),
        Region("Comunitat Valenciana", 0.13, _codes("03 12 46")),
        Region("Andalucía", 0.09, _codes("04 11 14 18 21 23 29 41")),
        Region("Aragón", 0.07, _codes("22 44 50")),
        Region("Navarra", 0.06, _codes("31")),
        Region("Castilla y León", 0.05, _codes("05 09 24 34 37 40 42 47 49")),
        Region("Galicia", 0.05, _codes("15 27 32 36")),
    ),
}


# --- accounts ---------------------------------------------------------------------------

INDUSTRIES = (
    "machine_tools",
    "automotive",
    "metalworking",
    "plastics",
    "food_processing",
    "packaging",
    "chemicals",
    "energy",
)
INDUSTRY_WEIGHTS = (0.22, 0.15, 0.15, 0.12, 0.10, 0.10, 0.09, 0.07)
# Revenue per employee in EUR (median); chemicals and energy are capital-intensive.
REVENUE_PER_EMPLOYEE = {
    "machine_tools": 190_000,
    "automotive": 240_000,
    "metalworking": 160_000,
    "plastics": 180_000,
    "food_processing": 210_000,
    "packaging": 170_000,
    "chemicals": 330_000,
    "energy": 380_000,
}

# Words that name what a company does, per language and industry.
INDUSTRY_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "de": {
        "machine_tools": (
            "Maschinenbau",
            "Werkzeugmaschinen",
            "Präzisionstechnik",
            "Fertigungstechnik",
            "CNC-Technik",
        ),
        "automotive": ("Fahrzeugtechnik", "Automotive", "Fahrzeugteile", "Antriebstechnik"),
        "metalworking": (
            "Metallbau",
            "Stahlbau",
            "Blechbearbeitung",
            "Umformtechnik",
            "Metallwerke",
        ),
        "plastics": ("Kunststofftechnik", "Kunststoffwerke", "Spritzguss", "Polymertechnik"),
        "food_processing": (
            "Lebensmitteltechnik",
            "Nahrungsmittel",
            "Molkerei",
            "Feinkost",
            "Backwaren",
        ),
        "packaging": ("Verpackungstechnik", "Verpackungen", "Etikettiertechnik", "Kartonagen"),
        "chemicals": ("Chemie", "Chemiewerke", "Spezialchemie", "Lackfabrik"),
        "energy": ("Energietechnik", "Energie", "Kraftwerkstechnik", "Windtechnik"),
    },
    "fr": {
        "machine_tools": ("Mécanique", "Usinage", "Machines-Outils", "Mécanique de Précision"),
        "automotive": ("Équipements Automobiles", "Pièces Auto", "Industrie Automobile"),
        "metalworking": ("Métallerie", "Chaudronnerie", "Forges", "Tôlerie"),
        "plastics": ("Plasturgie", "Plastiques", "Injection Plastique"),
        "food_processing": ("Agroalimentaire", "Laiterie", "Conserverie", "Biscuiterie"),
        "packaging": ("Emballages", "Conditionnement", "Cartonnerie"),
        "chemicals": ("Chimie", "Produits Chimiques", "Peintures"),
        "energy": ("Énergie", "Énergies", "Équipements Énergétiques"),
    },
    "it": {
        "machine_tools": (
            "Meccanica",
            "Macchine Utensili",
            "Meccanica di Precisione",
            "Officine Meccaniche",
        ),
        "automotive": ("Componenti Auto", "Automotive", "Ricambi"),
        "metalworking": ("Metalmeccanica", "Carpenteria Metallica", "Fonderia", "Lamiere"),
        "plastics": ("Plastica", "Materie Plastiche", "Stampaggio"),
        "food_processing": ("Alimentari", "Caseificio", "Conserve", "Pastificio"),
        "packaging": ("Imballaggi", "Packaging", "Cartotecnica"),
        "chemicals": ("Chimica", "Prodotti Chimici", "Vernici"),
        "energy": ("Energia", "Impianti Energetici", "Energie Rinnovabili"),
    },
    "es": {
        "machine_tools": (
            "Mecanizados",
            "Máquinas Herramienta",
            "Mecánica de Precisión",
            "Talleres",
        ),
        "automotive": ("Componentes Automoción", "Automoción", "Recambios"),
        "metalworking": ("Metalúrgica", "Calderería", "Estampaciones", "Fundiciones"),
        "plastics": ("Plásticos", "Inyección de Plásticos", "Polímeros"),
        "food_processing": ("Alimentación", "Conservas", "Lácteos", "Panificadora"),
        "packaging": ("Envases", "Embalajes", "Cartonajes"),
        "chemicals": ("Química", "Productos Químicos", "Pinturas"),
        "energy": ("Energía", "Energías Renovables", "Instalaciones Energéticas"),
    },
}

# Company name patterns per country: {s} a surname, {s2} a second surname, {w} an industry
# word. Each pattern carries a weight; legal forms are drawn separately.
NAME_PATTERNS: dict[str, tuple[tuple[str, float], ...]] = {
    "DE": (("{s} {w}", 0.6), ("{w} {s}", 0.25), ("{s} & {s2}", 0.15)),
    "AT": (("{s} {w}", 0.6), ("{w} {s}", 0.25), ("{s} & {s2}", 0.15)),
    "CH": (("{s} {w}", 0.6), ("{w} {s}", 0.25), ("{s} + {s2}", 0.15)),
    "FR": (
        ("{w} {s}", 0.65),
        ("Établissements {s}", 0.15),
        ("{s} et Fils", 0.1),
        ("Groupe {s}", 0.1),
    ),
    "IT": (("{s} {w}", 0.5), ("{w} {s}", 0.35), ("Officine {s}", 0.15)),
    "ES": (("{w} {s}", 0.7), ("Hijos de {s}", 0.1), ("Industrias {s}", 0.1), ("{s} y {s2}", 0.1)),
}
LEGAL_FORMS: dict[str, tuple[tuple[str, float], ...]] = {
    "DE": (("GmbH", 0.55), ("GmbH & Co. KG", 0.25), ("AG", 0.08), ("KG", 0.07), ("SE", 0.05)),
    "AT": (("GmbH", 0.7), ("AG", 0.1), ("GesmbH", 0.1), ("KG", 0.1)),
    "CH": (("AG", 0.6), ("GmbH", 0.35), ("SA", 0.05)),
    "FR": (("SAS", 0.55), ("SA", 0.2), ("SARL", 0.25)),
    "IT": (("S.r.l.", 0.7), ("S.p.A.", 0.25), ("S.n.c.", 0.05)),
    "ES": (("S.L.", 0.75), ("S.A.", 0.25)),
}

# --- people -----------------------------------------------------------------------------

_GERMAN_MEN = _names(
    """
    Thomas, Michael, Andreas, Stefan, Markus, Christian, Frank, Jürgen, Peter, Klaus, Martin,
    Matthias, Alexander, Sebastian, Tobias, Daniel, Jan, Florian, Jörg, Uwe, Ralf, Wolfgang, Bernd,
    Holger, Dirk, Sven, Oliver, Maximilian, Lukas, Jonas, Philipp, Dominik, Fabian, Simon, Felix,
    Benjamin, Kai, Torsten, Hans, Rüdiger
    """
)
_GERMAN_WOMEN = _names(
    """
    Sabine, Andrea, Claudia, Petra, Susanne, Nicole, Stefanie, Julia, Katrin, Anja, Birgit, Monika,
    Christina, Sandra, Melanie, Daniela, Tanja, Kerstin, Martina, Heike, Anna, Lena, Laura, Sarah,
    Lisa, Katharina, Jana, Miriam, Carina, Ulrike
    """
)

FIRST_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "DE": {"mr": _GERMAN_MEN, "ms": _GERMAN_WOMEN},
    "AT": {
        "mr": (*_GERMAN_MEN[:30], *_names("Gerald, Manfred, Reinhard, Gernot, Herbert, Josef")),
        "ms": (*_GERMAN_WOMEN[:24], *_names("Elisabeth, Brigitte, Gabriele, Theresa, Johanna")),
    },
    "CH": {
        "mr": _names(
            """
            Daniel, Peter, Thomas, Martin, Christian, Marco, Stefan, Andreas, Beat, Urs, Reto,
            Lukas, Simon, Patrick, Roland, Markus, Bruno, Hans, René, Adrian, Matthias, Roger,
            Samuel, Felix
            """
        ),
        "ms": _names(
            """
            Maria, Anna, Ursula, Ruth, Sandra, Monika, Barbara, Nicole, Claudia, Daniela, Andrea,
            Esther, Karin, Corinne, Franziska, Regula, Silvia, Brigitte, Cornelia, Sarah
            """
        ),
    },
    "FR": {
        "mr": _names(
            """
            Jean, Pierre, Michel, Philippe, Alain, Nicolas, Christophe, Patrick, Laurent, Stéphane,
            Frédéric, Olivier, Éric, Thierry, Julien, Sébastien, François, David, Vincent,
            Guillaume, Antoine, Thomas, Maxime, Romain, Mathieu, Jérôme, Benoît, Cédric, Hugo,
            Lucas
            """
        ),
        "ms": _names(
            """
            Marie, Nathalie, Isabelle, Sylvie, Catherine, Sandrine, Valérie, Christine, Céline,
            Stéphanie, Sophie, Aurélie, Julie, Camille, Émilie, Caroline, Claire, Laure, Anne,
            Élodie, Manon, Pauline, Chloé, Léa, Hélène
            """
        ),
    },
    "IT": {
        "mr": _names(
            """
            Marco, Giuseppe, Giovanni, Antonio, Francesco, Mario, Luigi, Andrea, Stefano,
            Alessandro, Roberto, Paolo, Luca, Massimo, Davide, Matteo, Simone, Federico, Riccardo,
            Lorenzo, Fabio, Claudio, Giorgio, Daniele, Enrico
            """
        ),
        "ms": _names(
            """
            Maria, Anna, Giulia, Francesca, Chiara, Sara, Laura, Valentina, Elena, Alessandra,
            Silvia, Martina, Federica, Paola, Roberta, Cristina, Elisa, Barbara, Monica, Simona,
            Giorgia, Serena, Ilaria, Beatrice, Marta
            """
        ),
    },
    "ES": {
        "mr": _names(
            """
            Antonio, José, Manuel, Francisco, David, Juan, Javier, Daniel, Carlos, Jesús,
            Alejandro, Miguel, Rafael, Pablo, Sergio, Fernando, Jorge, Alberto, Luis, Álvaro,
            Adrián, Diego, Raúl, Iñaki, Jordi
            """
        ),
        "ms": _names(
            """
            María, Carmen, Ana, Laura, Isabel, Cristina, Marta, Lucía, Elena, Sara, Paula, Raquel,
            Rosa, Pilar, Beatriz, Silvia, Nuria, Montserrat, Patricia, Irene, Sonia, Alicia, Eva,
            Natalia, Rocío
            """
        ),
    },
}

LAST_NAMES: dict[str, tuple[str, ...]] = {
    "DE": _names(
        """
        Müller, Schmidt, Schneider, Fischer, Weber, Meyer, Wagner, Becker, Schulz, Hoffmann,
        Schäfer, Koch, Bauer, Richter, Klein, Wolf, Schröder, Neumann, Schwarz, Zimmermann, Braun,
        Krüger, Hofmann, Hartmann, Lange, Schmitt, Werner, Schmitz, Krause, Meier, Lehmann, Schmid,
        Schulze, Maier, Köhler, Herrmann, König, Walter, Mayer, Huber, Kaiser, Fuchs, Peters, Lang,
        Scholz, Möller, Weiß, Jung, Hahn, Vogel, Friedrich, Keller, Günther, Frank, Berger,
        Winkler, Roth, Beck, Lorenz, Baumann
        """
    ),
    "AT": _names(
        """
        Gruber, Huber, Bauer, Wagner, Müller, Pichler, Steiner, Moser, Mayer, Hofer, Leitner,
        Berger, Fuchs, Eder, Fischer, Schmid, Winkler, Weber, Schwarz, Maier, Schneider, Reiter,
        Mayr, Schmidt, Wimmer, Egger, Brunner, Lang, Baumgartner, Auer, Binder, Lechner, Wolf,
        Wallner, Aigner, Ebner, Koller, Lehner, Haas, Schuster
        """
    ),
    "CH": _names(
        """
        Müller, Meier, Schmid, Keller, Weber, Huber, Schneider, Meyer, Steiner, Fischer, Gerber,
        Brunner, Baumann, Frei, Zimmermann, Moser, Widmer, Wyss, Graf, Roth, Suter, Baumgartner,
        Bachmann, Studer, Bühler, Kälin, Lüthi, Zürcher, Egli, Hess
        """
    ),
    "FR": _names(
        """
        Martin, Bernard, Dubois, Thomas, Robert, Richard, Petit, Durand, Leroy, Moreau, Simon,
        Laurent, Lefebvre, Michel, Garcia, David, Bertrand, Roux, Vincent, Fournier, Morel, Girard,
        André, Lefèvre, Mercier, Dupont, Lambert, Bonnet, François, Martinez, Legrand, Garnier,
        Faure, Rousseau, Blanc, Guérin, Muller, Henry, Roussel, Nicolas, Perrin, Morin, Mathieu,
        Clément, Gauthier
        """
    ),
    "IT": _names(
        """
        Rossi, Russo, Ferrari, Esposito, Bianchi, Romano, Colombo, Ricci, Marino, Greco, Bruno,
        Gallo, Conti, De Luca, Mancini, Costa, Giordano, Rizzo, Lombardi, Moretti, Barbieri,
        Fontana, Santoro, Mariani, Rinaldi, Caruso, Ferrara, Galli, Martini, Leone, Longo, Gentile,
        Martinelli, Vitale, Lombardo, Serra, Coppola, De Santis, D'Angelo, Marchetti
        """
    ),
    "ES": _names(
        """
        García, Rodríguez, González, Fernández, López, Martínez, Sánchez, Pérez, Gómez, Martín,
        Jiménez, Ruiz, Hernández, Díaz, Moreno, Muñoz, Álvarez, Romero, Alonso, Gutiérrez, Navarro,
        Torres, Domínguez, Vázquez, Ramos, Gil, Ramírez, Serrano, Blanco, Molina, Morales, Suárez,
        Ortega, Delgado, Castro, Ortiz, Rubio, Marín, Sanz, Iglesias, Etxeberria, Puig, Vidal,
        Ferrer
        """
    ),
}

DECISION_ROLES = ("purchaser", "production_manager", "managing_director", "other")
ROLE_WEIGHTS = (0.30, 0.30, 0.13, 0.27)
# The person who buys for a customer account.
BUYER_ROLE_WEIGHTS = (0.55, 0.25, 0.20, 0.0)

# Job titles per language and decision role, as (form for mr, form for ms).
POSITIONS: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {
    "de": {
        "purchaser": (
            ("Einkäufer", "Einkäuferin"),
            ("Leiter Einkauf", "Leiterin Einkauf"),
            ("Strategischer Einkäufer", "Strategische Einkäuferin"),
        ),
        "production_manager": (
            ("Leiter Produktion", "Leiterin Produktion"),
            ("Produktionsleiter", "Produktionsleiterin"),
            ("Betriebsleiter", "Betriebsleiterin"),
        ),
        "managing_director": (
            ("Geschäftsführer", "Geschäftsführerin"),
            ("Inhaber", "Inhaberin"),
            ("Technischer Geschäftsführer", "Technische Geschäftsführerin"),
        ),
        "other": (
            ("Leiter Instandhaltung", "Leiterin Instandhaltung"),
            ("Instandhaltungstechniker", "Instandhaltungstechnikerin"),
            ("Konstrukteur", "Konstrukteurin"),
            ("Qualitätsmanager", "Qualitätsmanagerin"),
            ("Assistent der Geschäftsführung", "Assistentin der Geschäftsführung"),
        ),
    },
    "fr": {
        "purchaser": (
            ("Acheteur", "Acheteuse"),
            ("Responsable achats", "Responsable achats"),
            ("Directeur des achats", "Directrice des achats"),
        ),
        "production_manager": (
            ("Directeur de production", "Directrice de production"),
            ("Responsable de production", "Responsable de production"),
            ("Chef d'atelier", "Cheffe d'atelier"),
        ),
        "managing_director": (
            ("Directeur général", "Directrice générale"),
            ("Gérant", "Gérante"),
            ("Président", "Présidente"),
        ),
        "other": (
            ("Responsable maintenance", "Responsable maintenance"),
            ("Technicien de maintenance", "Technicienne de maintenance"),
            ("Ingénieur méthodes", "Ingénieure méthodes"),
            ("Responsable qualité", "Responsable qualité"),
        ),
    },
    "it": {
        "purchaser": (
            ("Responsabile acquisti", "Responsabile acquisti"),
            ("Buyer", "Buyer"),
            ("Addetto acquisti", "Addetta acquisti"),
        ),
        "production_manager": (
            ("Responsabile di produzione", "Responsabile di produzione"),
            ("Direttore di stabilimento", "Direttrice di stabilimento"),
            ("Capo reparto", "Capo reparto"),
        ),
        "managing_director": (
            ("Amministratore delegato", "Amministratrice delegata"),
            ("Direttore generale", "Direttrice generale"),
            ("Titolare", "Titolare"),
        ),
        "other": (
            ("Responsabile manutenzione", "Responsabile manutenzione"),
            ("Tecnico di manutenzione", "Tecnica di manutenzione"),
            ("Ufficio tecnico", "Ufficio tecnico"),
            ("Responsabile qualità", "Responsabile qualità"),
        ),
    },
    "es": {
        "purchaser": (
            ("Jefe de compras", "Jefa de compras"),
            ("Responsable de compras", "Responsable de compras"),
            ("Comprador", "Compradora"),
        ),
        "production_manager": (
            ("Jefe de producción", "Jefa de producción"),
            ("Director de planta", "Directora de planta"),
            ("Responsable de producción", "Responsable de producción"),
        ),
        "managing_director": (
            ("Director general", "Directora general"),
            ("Gerente", "Gerente"),
            ("Consejero delegado", "Consejera delegada"),
        ),
        "other": (
            ("Responsable de mantenimiento", "Responsable de mantenimiento"),
            ("Técnico de mantenimiento", "Técnica de mantenimiento"),
            ("Ingeniero de procesos", "Ingeniera de procesos"),
            ("Responsable de calidad", "Responsable de calidad"),
        ),
    },
}

# How a company writes its addresses; one convention per company, as in real life.
EMAIL_PATTERNS = ("{first}.{last}", "{f}.{last}", "{first}{last}", "{last}")
EMAIL_PATTERN_WEIGHTS = (0.55, 0.25, 0.1, 0.1)

# --- the manufacturer: Steinhoff Hydraulik (include/config) -------------------------------
# The values below mirror the shipped example configuration (company.yaml, products.yaml,
# routing.yaml, costs.yaml, campaigns/, tracking/), so scores, personas, segments, routing
# and fair ROI find matching data; tests/leadflow/demo/test_config_alignment.py checks that.

COMPANY_DOMAIN = "steinhoff-hydraulik.example"

# Sales teams (routing.yaml): the owner of an account is a member of the team its
# territory belongs to.
SALES_TEAMS: dict[str, tuple[str, ...]] = {
    "dach_north": ("Jana Krüger", "Tobias Lange", "Mehmet Aydin"),
    "dach_south": ("Sabine Huber", "Florian Maier"),
    "alpine": ("Lukas Gruber", "Claudia Meier"),
    "key_accounts": ("Max Steinhoff", "Petra Schubert"),
    "france": ("Camille Martin", "Julien Bernard"),
    "italy": ("Giulia Rossi", "Marco Bianchi"),
    "spain": ("Lucía García", "Javier López"),
    "inside_sales": ("Nina Wolf",),
}
TEAM_OF_COUNTRY = {"AT": "alpine", "CH": "alpine", "FR": "france", "IT": "italy", "ES": "spain"}
KEY_ACCOUNT_MIN_EMPLOYEES = 500  # DACH machine-tool builders above this: key accounts

# --- products ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Product:
    product_id: str
    sku: str
    name: str
    family: str
    list_price_cents: int
    unit_cost_cents: int
    maintenance_interval_months: int | None = None


PRODUCTS = (
    Product("HS2000", "HS-2000", "HydroStat 2000", "hydrostat", 4_200_000, 2_730_000, 24),
    Product("HS3000", "HS-3000", "HydroStat 3000", "hydrostat", 5_400_000, 3_350_000, 36),
    Product("CLN-10", "CLN-10", "HydroClean Konzentrat 10 l", "cleaning_agent", 18_900, 6_100),
    Product("CLN-25", "CLN-25", "HydroClean Konzentrat 25 l", "cleaning_agent", 41_900, 13_800),
    Product("MNT-KIT", "MNT-KIT", "HydroStat Wartungsset", "maintenance_device", 129_000, 54_000),
    Product(
        "MNT-DIAG", "MNT-DIAG", "HydroStat Diagnosegerät", "maintenance_device", 485_000, 215_000
    ),
    # An annual licence: customers renew it every year.
    Product("SW-SCOPE", "SW-SCOPE", "HydroScope Fehleranalyse", "software", 240_000, 30_000),
)

# --- marketing ----------------------------------------------------------------------------

# Interests feed personas (personas.yaml) and profile scoring (scoring.yaml).
INTERESTS = (
    "hydraulic_components",
    "maintenance",
    "cleaning",
    "software",
    "hydrostat_3000",
    "service_contracts",
    "spare_parts",
    "pricing",
    "energy_efficiency",
    "investment",
    "productivity",
)
TAGS = (
    "newsletter",
    "key_account",
    "service_contract",
    "trade_fair_visitor",
    "ebook_reader",
    "student",
    "press",
    "competitor",
)
HONEYPOT_LINK_TAG = "honeypot"  # a hidden link only scanners follow (company.yaml)


@dataclass(frozen=True)
class Campaign:
    """A journey of campaigns/<id>.yaml whose past sends appear in the tracking history."""

    campaign_id: str
    steps: tuple[str, ...]  # ids of its send steps, in order
    days_between_steps: int
    link_tags: tuple[str, ...]


CAMPAIGNS = (
    Campaign(
        "onboarding",
        ("welcome", "cleaning_tips", "maintenance_tips", "feedback"),
        7,
        ("cleaning_agent", "maintenance_device", "book_maintenance"),
    ),
    Campaign(
        "cross_sell",
        ("intro", "reminder", "cleaning_guide"),
        7,
        ("cleaning_agent", "maintenance_device", "software"),
    ),
    Campaign(
        "upsell_hs3000",
        ("maintenance_notice", "care_tips", "comparison", "use_cases"),
        14,
        ("book_maintenance", "hydrostat_3000", "pricing"),
    ),
    Campaign(
        "loyalty",
        ("thank_you", "survey", "fair_invitation", "exclusive_content"),
        14,
        ("survey", "trade_fair", "software"),
    ),
    Campaign(
        "inactivity", ("we_miss_you", "last_chance"), 14, ("hydrostat_3000", "cleaning_agent")
    ),
    Campaign(
        "fair_followup",
        ("thank_you", "material", "use_case"),
        5,
        ("hydrostat_3000", "pricing", "trade_fair"),
    ),
    Campaign(
        "ebook_nurture",
        ("deliver_ebook", "chapter_insights", "use_case", "datasheet_offer"),
        7,
        ("hydraulic_components", "hydrostat_3000", "pricing"),
    ),
)
NEWSLETTER_CAMPAIGN = "newsletter"
NEWSLETTER_STEP = "send"
NEWSLETTER_LINK_TAGS = (
    "hydraulic_components",
    "hydrostat_3000",
    "cleaning_agent",
    "maintenance_device",
    "software",
    "trade_fair",
)
# Journeys drawn at random for customers and for leads; the event-triggered ones
# (onboarding, fair_followup, ebook_nurture) follow their trigger.
CUSTOMER_CAMPAIGNS = ("cross_sell", "loyalty", "upsell_hs3000")
LEAD_CAMPAIGNS = ("inactivity",)

WEBSITE = {
    "de": f"https://www.{COMPANY_DOMAIN}",
    "fr": f"https://fr.{COMPANY_DOMAIN}",
    "it": f"https://it.{COMPANY_DOMAIN}",
    "es": f"https://es.{COMPANY_DOMAIN}",
}
# Pages per language (path, weight); the first is the home page.
WEB_PAGES: dict[str, tuple[tuple[str, float], ...]] = {
    "de": (
        ("/", 0.2),
        ("/produkte/hydrostat-3000", 0.17),
        ("/produkte/hydrostat-2000", 0.07),
        ("/produkte/hydroclean", 0.08),
        ("/produkte/wartungsset", 0.05),
        ("/produkte/diagnosegeraet", 0.04),
        ("/software/hydroscope", 0.06),
        ("/service/wartung", 0.08),
        ("/downloads/ebook-antriebslosigkeit", 0.07),
        ("/preise", 0.06),
        ("/messen", 0.04),
        ("/kontakt", 0.05),
        ("/karriere", 0.03),
    ),
    "fr": (
        ("/", 0.2),
        ("/produits/hydrostat-3000", 0.17),
        ("/produits/hydrostat-2000", 0.07),
        ("/produits/hydroclean", 0.08),
        ("/produits/kit-de-maintenance", 0.05),
        ("/produits/appareil-de-diagnostic", 0.04),
        ("/logiciel/hydroscope", 0.06),
        ("/service/maintenance", 0.08),
        ("/telechargements/ebook-antriebslosigkeit", 0.07),
        ("/tarifs", 0.06),
        ("/salons", 0.04),
        ("/contact", 0.05),
        ("/carrieres", 0.03),
    ),
    "it": (
        ("/", 0.2),
        ("/prodotti/hydrostat-3000", 0.17),
        ("/prodotti/hydrostat-2000", 0.07),
        ("/prodotti/hydroclean", 0.08),
        ("/prodotti/kit-di-manutenzione", 0.05),
        ("/prodotti/dispositivo-diagnostico", 0.04),
        ("/software/hydroscope", 0.06),
        ("/assistenza/manutenzione", 0.08),
        ("/download/ebook-antriebslosigkeit", 0.07),
        ("/prezzi", 0.06),
        ("/fiere", 0.04),
        ("/contatti", 0.05),
        ("/lavora-con-noi", 0.03),
    ),
    "es": (
        ("/", 0.2),
        ("/productos/hydrostat-3000", 0.17),
        ("/productos/hydrostat-2000", 0.07),
        ("/productos/hydroclean", 0.08),
        ("/productos/kit-de-mantenimiento", 0.05),
        ("/productos/dispositivo-de-diagnostico", 0.04),
        ("/software/hydroscope", 0.06),
        ("/servicio/mantenimiento", 0.08),
        ("/descargas/ebook-antriebslosigkeit", 0.07),
        ("/precios", 0.06),
        ("/ferias", 0.04),
        ("/contacto", 0.05),
        ("/empleo", 0.03),
    ),
}
CONTACT_PAGE = {"de": "/kontakt", "fr": "/contact", "it": "/contatti", "es": "/contacto"}
# Downloadable assets (company.yaml) and how often each is downloaded.
EBOOK_ASSET = "ebook_antriebslosigkeit"
ASSETS = (
    (EBOOK_ASSET, 0.45),
    ("datasheet_hs3000", 0.25),
    ("comparison_hs2000_hs3000", 0.15),
    ("maintenance_guide", 0.15),
)
FORMS = (("contact", 0.4), ("demo_request", 0.2), ("service_request", 0.25), ("newsletter", 0.15))

BROWSER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like"
    " Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
)
MAIL_CLIENT_AGENTS = (
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like"
    " Gecko) Mobile/15E148",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Thunderbird/128.4.0",
)
# Privacy proxies and security scanners that fetch every image or link of a mail; each
# contains one of the substrings of include/config/tracking/machine_user_agents.txt.
MACHINE_AGENTS = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Mozilla/5.0 (compatible; YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy)",
    "Barracuda Sentinel (EE)",
    "Mimecast Security Scanner/1.0",
    "Proofpoint URL Defense/2.0",
    "Microsoft Office Protection",
)
# Machine opens and clicks come this soon after delivery (company.yaml treats anything
# within 10 seconds as a machine); people take at least a minute.
MACHINE_DELAY_SECONDS = (1, 10)
HUMAN_MIN_DELAY_SECONDS = 60


@dataclass(frozen=True)
class Fair:
    """A trade fair (costs.yaml), held on about the same days every `every` years."""

    name: str
    month: int
    day: int
    days: int
    countries: tuple[str, ...]
    time_zone: str
    every: int = 1
    odd_years: bool = False  # with every=2: held in odd (True) or even (False) years

    def held_in(self, year: int) -> bool:
        return self.every == 1 or (year % 2 == 1) == self.odd_years


FAIRS = (
    Fair("Hannover Messe", 4, 20, 5, ("DE", "AT", "CH"), "Europe/Berlin"),
    Fair("EMO Hannover", 9, 22, 6, COUNTRIES, "Europe/Berlin", every=2, odd_years=True),
    Fair("Global Industrie Paris", 3, 10, 4, ("FR",), "Europe/Paris"),
    Fair("MECSPE Bologna", 3, 4, 3, ("IT",), "Europe/Rome"),
    Fair("BIEMH Bilbao", 6, 1, 5, ("ES",), "Europe/Madrid", every=2, odd_years=False),
)
# The fairs whose lead scans make up the generated snapADDY export.
EXPORT_FAIRS = ("Hannover Messe", "EMO Hannover", "Global Industrie Paris")

FAIR_NOTES: dict[str, tuple[str, ...]] = {
    "de": (
        "Interesse an HydroStat 3000, bitte Angebot senden",
        "Wartungsvertrag für zwei Anlagen besprochen",
        "Rückruf wegen Reinigungsmittel erbeten",
        "Sucht Lösung für Fehleranalyse an der Presse",
        "",
    ),
    "fr": (
        "Intéressé par l'HydroStat 3000, envoyer une offre",
        "Souhaite un rendez-vous pour la maintenance",
        "Questions sur le logiciel HydroScope",
        "",
    ),
    "it": ("Interessato a HydroStat 3000", "Richiede offerta per kit di manutenzione", ""),
    "es": ("Interesado en HydroStat 3000", "Pide presupuesto de mantenimiento", ""),
}
