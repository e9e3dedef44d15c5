# Les textes propres à l’application d’exemple (app-*) ; ceux du framework viennent de Rampart.

app-skip = Aller au contenu
app-account-menu = Menu du compte de { $name }
app-signed-in-as = Connecté en tant que
app-your-profile = Votre profil
app-security = Sécurité
app-sign-out = Se déconnecter
app-account = Compte
app-built-with = construit avec Rampart, Flask-Security pour axum
app-terms = Conditions
app-optional = (facultatif)
app-error = Erreur :
app-check-form = Veuillez vérifier le formulaire : { $count ->
        [one] un champ doit être modifié
       *[other] { $count } champs doivent être modifiés
    }
app-or-continue-with = ou continuer avec
app-login-continue = pour continuer vers { $app }
app-or = ou
app-email-code = M’envoyer un code de connexion par e-mail
app-new-to = Nouveau sur { $app } ?
app-no-confirmation = Vous n’avez pas reçu l’e-mail de confirmation ?
app-send-again = Le renvoyer
app-register-heading = Créez votre compte
app-register-intro-confirm = Cela prend une minute ; nous vous enverrons un lien pour confirmer votre adresse.
app-register-intro = Cela prend une minute.
app-terms-of-service = Conditions d’utilisation
app-password-hint = Au moins 8 caractères.
app-agree = J’accepte les
app-terms-link = conditions d’utilisation
app-create-account = Créer le compte
app-or-sign-up-with = ou s’inscrire avec
app-provider-agree = En vous inscrivant avec un fournisseur, vous acceptez les
app-have-account = Vous avez déjà un compte ?
app-reset-expired = Ce lien de réinitialisation a expiré
app-reset-unusable = Ce lien de réinitialisation ne peut pas être utilisé
app-reset-resent = Les liens de réinitialisation expirent après { $within } ; nous vous en avons donc envoyé un nouveau : utilisez le lien du dernier e-mail.
app-reset-rules = Les liens de réinitialisation ne servent qu’une fois, ne fonctionnent plus quand votre mot de passe change et expirent après { $within }. Saisissez votre adresse e-mail et nous vous en enverrons un nouveau.
app-forgot-intro = Saisissez l’adresse e-mail de votre inscription et nous vous enverrons un lien pour choisir un nouveau mot de passe.
app-remembered = Il vous est revenu ?
app-reset-intro = Vous vous connecterez désormais avec celui-ci ; toutes vos autres sessions sont fermées.
app-set-new-password = Enregistrer le nouveau mot de passe
app-link-expired = Ce lien a expiré
app-link-unusable = Ce lien ne peut pas être utilisé
app-confirm-heading = Confirmez votre adresse e-mail
app-confirm-resent = Les liens de confirmation expirent après { $within } ; nous vous en avons donc envoyé un nouveau : utilisez le lien du dernier e-mail. Mauvaise adresse ? Envoyez un lien à une autre ci-dessous.
app-confirm-rules = Les liens de confirmation ne servent qu’une fois et expirent après { $within }. Si vous avez déjà confirmé votre adresse, vous pouvez simplement
app-sign-in-lower = vous connecter
app-confirm-otherwise = Sinon, saisissez votre adresse e-mail et nous vous enverrons un nouveau lien.
app-confirm-intro = Vous n’avez pas reçu l’e-mail, ou le lien a expiré ? Saisissez votre adresse et nous vous enverrons un nouveau lien de confirmation.

app-resent-marker = envoyées

# Les messages que l’application reformule en anglais avec SECURITY_PAGE_MSG_* / SECURITY_MSG_*.
USERNAME_INVALID_LENGTH = Utilisez de { $min } à { $max } lettres ou chiffres, sans espaces ni symboles.
INVALID_INPUT = Utilisez de { $min } à { $max } lettres ou chiffres, sans espaces ni symboles.
GENERIC_AUTHN_FAILED = L’e-mail ou le nom d’utilisateur et le mot de passe ne correspondent pas. Vérifiez les deux et réessayez.
INVALID_RESET_PASSWORD_TOKEN = Ce lien de réinitialisation ne fonctionne pas : il a déjà été utilisé ou il est incomplet. Demandez-en un nouveau ci-dessous.
INVALID_CONFIRMATION_TOKEN = Ce lien de confirmation ne fonctionne pas : il est incomplet ou périmé. Demandez-en un nouveau ci-dessous.
TWO_FACTOR_CHANGE_METHOD_SUCCESSFUL = L’authentification à deux facteurs est activée. Un code vous sera demandé à la connexion.
CONFIRMATION_EXPIRED = Vous n’avez pas confirmé votre adresse e-mail dans le délai de { $within }. De nouvelles instructions de confirmation ont été envoyées à { $email }.
PASSWORD_RESET_EXPIRED = Vous n’avez pas réinitialisé votre mot de passe dans le délai de { $within }. De nouvelles instructions ont été envoyées à { $email }.
