"""The scores service: facts per dossier in SQL, the portal's Decision 766 formulas, API, pages."""
