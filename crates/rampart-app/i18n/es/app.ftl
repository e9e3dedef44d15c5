# Los textos propios de la aplicación de ejemplo (app-*); los del framework vienen de Rampart.

app-skip = Saltar al contenido
app-account-menu = Menú de la cuenta de { $name }
app-signed-in-as = Sesión iniciada como
app-your-profile = Tu perfil
app-security = Seguridad
app-sign-out = Cerrar sesión
app-account = Cuenta
app-built-with = hecho con Rampart, Flask-Security para axum
app-terms = Condiciones
app-optional = (opcional)
app-error = Error:
app-check-form = Revisa el formulario: { $count ->
        [one] hay que cambiar un campo
       *[other] hay que cambiar { $count } campos
    }
app-or-continue-with = o continuar con
app-login-continue = para continuar a { $app }
app-or = o
app-email-code = Enviarme un código de inicio de sesión por correo
app-new-to = ¿Nuevo en { $app }?
app-no-confirmation = ¿No te llegó el correo de confirmación?
app-send-again = Volver a enviarlo
app-register-heading = Crea tu cuenta
app-register-intro-confirm = Es un minuto; te enviaremos un enlace para confirmar tu dirección.
app-register-intro = Es un minuto.
app-terms-of-service = Condiciones del servicio
app-password-hint = Al menos 8 caracteres.
app-agree = Acepto las
app-terms-link = condiciones del servicio
app-create-account = Crear cuenta
app-or-sign-up-with = o regístrate con
app-provider-agree = Al registrarte con un proveedor, aceptas las
app-have-account = ¿Ya tienes una cuenta?
app-reset-expired = Este enlace de restablecimiento ha caducado
app-reset-unusable = Este enlace de restablecimiento no se puede usar
app-reset-resent = Los enlaces de restablecimiento caducan tras { $within }, así que te hemos enviado uno nuevo: usa el enlace del correo más reciente.
app-reset-rules = Los enlaces para restablecer la contraseña funcionan una vez, dejan de funcionar cuando cambia tu contraseña y caducan tras { $within }. Escribe tu correo electrónico y te enviaremos uno nuevo.
app-forgot-intro = Escribe el correo electrónico con el que te registraste y te enviaremos un enlace para elegir una contraseña nueva.
app-remembered = ¿Te has acordado?
app-reset-intro = A partir de ahora iniciarás sesión con ella; todas tus demás sesiones se cierran.
app-set-new-password = Guardar la contraseña nueva
app-link-expired = Este enlace ha caducado
app-link-unusable = Este enlace no se puede usar
app-confirm-heading = Confirma tu correo electrónico
app-confirm-resent = Los enlaces de confirmación caducan tras { $within }, así que te hemos enviado uno nuevo: usa el enlace del correo más reciente. ¿Dirección equivocada? Envía un enlace a otra abajo.
app-confirm-rules = Los enlaces de confirmación funcionan una vez y caducan tras { $within }. Si ya has confirmado tu dirección, puedes simplemente
app-sign-in-lower = iniciar sesión
app-confirm-otherwise = Si no, escribe tu correo electrónico y te enviaremos un enlace nuevo.
app-confirm-intro = ¿No te llegó el correo o caducó el enlace? Escribe tu dirección y te enviaremos un nuevo enlace de confirmación.

app-resent-marker = enviado

# Los mensajes que la aplicación reformula en inglés con SECURITY_PAGE_MSG_* / SECURITY_MSG_*.
USERNAME_INVALID_LENGTH = Usa de { $min } a { $max } letras o dígitos, sin espacios ni símbolos.
INVALID_INPUT = Usa de { $min } a { $max } letras o dígitos, sin espacios ni símbolos.
GENERIC_AUTHN_FAILED = El correo electrónico o nombre de usuario y la contraseña no coinciden. Revisa ambos e inténtalo de nuevo.
INVALID_RESET_PASSWORD_TOKEN = Este enlace de restablecimiento no funciona: ya se usó o está incompleto. Pide uno nuevo abajo.
INVALID_CONFIRMATION_TOKEN = Este enlace de confirmación no funciona: está incompleto o caducado. Pide uno nuevo abajo.
TWO_FACTOR_CHANGE_METHOD_SUCCESSFUL = La autenticación de dos factores está activada. Se te pedirá un código al iniciar sesión.
CONFIRMATION_EXPIRED = No has confirmado tu correo electrónico en un plazo de { $within }. Se han enviado nuevas instrucciones de confirmación a { $email }.
PASSWORD_RESET_EXPIRED = No has restablecido tu contraseña en un plazo de { $within }. Se han enviado nuevas instrucciones a { $email }.
