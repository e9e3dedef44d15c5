# Die eigenen Seitentexte der Beispiel-App (app-*); die des Frameworks kommen aus Rampart.

app-skip = Zum Inhalt springen
app-account-menu = Kontomenü von { $name }
app-signed-in-as = Angemeldet als
app-your-profile = Ihr Profil
app-security = Sicherheit
app-sign-out = Abmelden
app-account = Konto
app-built-with = erstellt mit Rampart, Flask-Security für axum
app-terms = Nutzungsbedingungen
app-optional = (optional)
app-error = Fehler:
app-check-form = Bitte prüfen Sie das Formular: { $count ->
        [one] ein Feld muss
       *[other] { $count } Felder müssen
    } geändert werden
app-or-continue-with = oder weiter mit
app-login-continue = um mit { $app } fortzufahren
app-or = oder
app-email-code = Anmeldecode per E-Mail senden
app-new-to = Neu bei { $app }?
app-no-confirmation = Keine Bestätigungs-E-Mail erhalten?
app-send-again = Erneut senden
app-register-heading = Konto erstellen
app-register-intro-confirm = Es dauert nur eine Minute; wir senden Ihnen einen Link zur Bestätigung Ihrer Adresse.
app-register-intro = Es dauert nur eine Minute.
app-terms-of-service = Nutzungsbedingungen
app-password-hint = Mindestens 8 Zeichen.
app-agree = Ich stimme den
app-terms-link = Nutzungsbedingungen zu
app-create-account = Konto erstellen
app-or-sign-up-with = oder registrieren mit
app-provider-agree = Mit der Registrierung über einen Anbieter stimmen Sie den
app-have-account = Sie haben schon ein Konto?
app-reset-expired = Dieser Link zum Zurücksetzen ist abgelaufen
app-reset-unusable = Dieser Link zum Zurücksetzen kann nicht verwendet werden
app-reset-resent = Links zum Zurücksetzen laufen nach { $within } ab, daher haben wir Ihnen einen neuen gesendet: Verwenden Sie den Link in der neuesten E-Mail.
app-reset-rules = Links zum Zurücksetzen des Passworts funktionieren einmal, werden ungültig, wenn sich Ihr Passwort ändert, und laufen nach { $within } ab. Geben Sie Ihre E-Mail-Adresse ein, und wir senden Ihnen einen neuen.
app-forgot-intro = Geben Sie die E-Mail-Adresse ein, mit der Sie sich registriert haben, und wir senden Ihnen einen Link, mit dem Sie ein neues Passwort wählen können.
app-remembered = Doch wieder eingefallen?
app-reset-intro = Ab jetzt melden Sie sich damit an; alle Ihre anderen Sitzungen werden abgemeldet.
app-set-new-password = Neues Passwort festlegen
app-link-expired = Dieser Link ist abgelaufen
app-link-unusable = Dieser Link kann nicht verwendet werden
app-confirm-heading = E-Mail-Adresse bestätigen
app-confirm-resent = Bestätigungslinks laufen nach { $within } ab, daher haben wir Ihnen einen neuen gesendet: Verwenden Sie den Link in der neuesten E-Mail. Falsche Adresse? Senden Sie unten einen Link an eine andere.
app-confirm-rules = Bestätigungslinks funktionieren einmal und laufen nach { $within } ab. Wenn Sie Ihre Adresse bereits bestätigt haben, können Sie sich einfach
app-sign-in-lower = anmelden
app-confirm-otherwise = Andernfalls geben Sie Ihre E-Mail-Adresse ein, und wir senden Ihnen einen neuen Link.
app-confirm-intro = Keine E-Mail erhalten oder der Link ist abgelaufen? Geben Sie Ihre Adresse ein, und wir senden einen neuen Bestätigungslink.

app-resent-marker = gesendet

# Die Meldungen, die die App auf Englisch mit SECURITY_PAGE_MSG_* / SECURITY_MSG_* umformuliert.
USERNAME_INVALID_LENGTH = Verwenden Sie { $min } bis { $max } Buchstaben oder Ziffern, ohne Leerzeichen oder Symbole.
INVALID_INPUT = Verwenden Sie { $min } bis { $max } Buchstaben oder Ziffern, ohne Leerzeichen oder Symbole.
GENERIC_AUTHN_FAILED = E-Mail-Adresse bzw. Benutzername und Passwort passen nicht zusammen. Prüfen Sie beides und versuchen Sie es erneut.
INVALID_RESET_PASSWORD_TOKEN = Dieser Link zum Zurücksetzen funktioniert nicht: Er wurde bereits verwendet oder ist unvollständig. Fordern Sie unten einen neuen an.
INVALID_CONFIRMATION_TOKEN = Dieser Bestätigungslink funktioniert nicht: Er ist unvollständig oder veraltet. Fordern Sie unten einen neuen an.
TWO_FACTOR_CHANGE_METHOD_SUCCESSFUL = Die Zwei-Faktor-Authentifizierung ist eingeschaltet. Bei der Anmeldung werden Sie nach einem Code gefragt.
CONFIRMATION_EXPIRED = Sie haben Ihre E-Mail-Adresse nicht innerhalb von { $within } bestätigt. Eine neue Anleitung zur Bestätigung wurde an { $email } gesendet.
PASSWORD_RESET_EXPIRED = Sie haben Ihr Passwort nicht innerhalb von { $within } zurückgesetzt. Eine neue Anleitung wurde an { $email } gesendet.
